"""Create-job validation answers like OpenAI: 400 naming the offending `param`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sandbox.conftest import FakeClock, chat_lines, jsonl, upload


@pytest.fixture
def train(client: httpx.Client) -> str:
    return upload(client, jsonl(chat_lines(10)))


def _err(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/fine_tuning/jobs", json=body)
    assert r.status_code == 400, r.text
    err: dict[str, Any] = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"]
    return err


@pytest.mark.parametrize("patch, param", [
    ({"model": None}, "model"),
    ({"model": "gpt-9-turbo"}, "model"),
    ({"model": "davinci-002"}, "model"),  # retired
    ({"model": "ft:gpt-4o-mini-2024-07-18:org::abc"}, "model"),  # unknown fine-tuned model
    ({"training_file": None}, "training_file"),
    ({"training_file": "file-missing"}, "training_file"),
    ({"validation_file": "file-missing"}, "validation_file"),
    ({"suffix": "x" * 65}, "suffix"),
    ({"suffix": ""}, "suffix"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**31}, "seed"),
    ({"seed": True}, "seed"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ({"metadata": {"k" * 65: "v"}}, "metadata"),
    ({"metadata": {"k": "v" * 513}}, "metadata"),
    ({"metadata": {"k": 1}}, "metadata"),
    ({"integrations": [{"type": "slack"}]}, "integrations"),
    ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs"),
    ({"hyperparameters": {"n_epochs": 51}}, "hyperparameters.n_epochs"),
    ({"hyperparameters": {"batch_size": 257}}, "hyperparameters.batch_size"),
    ({"hyperparameters": {"learning_rate_multiplier": 0}}, "hyperparameters.learning_rate_multiplier"),
    ({"hyperparameters": {"warmup": 3}}, "hyperparameters.warmup"),
    ({"method": {"type": "magic"}}, "method.type"),
    ({"method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 3}}}}, "method.dpo.hyperparameters.beta"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": "big"}}}},
     "method.supervised.hyperparameters.batch_size"),
    ({"method": {"type": "reinforcement", "reinforcement": {}}}, "method.type"),  # gpt-4o-mini: no RFT
    ({"model": "o4-mini", "method": {"type": "reinforcement", "reinforcement": {}}},
     "method.reinforcement.grader"),
    ({"method": {"type": "dpo"}, "hyperparameters": {"n_epochs": 2}}, "hyperparameters"),
    ({"model": "gpt-3.5-turbo", "method": {"type": "dpo"}}, "method.type"),
    ({"nonsense": 1}, "nonsense"),
    ({"model": "o4-mini"}, "method"),  # reinforcement-only model without a method
])
def test_bad_create_bodies(client: httpx.Client, train: str, patch: dict[str, Any], param: str) -> None:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "training_file": train, **patch}
    body = {k: v for k, v in body.items() if v is not None}
    assert _err(client, body)["param"] == param


def test_wrong_purpose_and_codes(client: httpx.Client) -> None:
    other = upload(client, jsonl(chat_lines(10)), purpose="user_data")
    err = _err(client, {"model": "gpt-4o-mini", "training_file": other})
    assert err["param"] == "training_file" and err["code"] == "invalid_file_purpose"
    err = _err(client, {"model": "gpt-4.5-preview", "training_file": other})
    assert err["code"] == "model_not_available"


def test_retired_models_are_refused_but_the_platform_stays_open(client: httpx.Client, train: str,
                                                                 clock: FakeClock) -> None:
    err = _err(client, {"model": "babbage-002", "training_file": train})
    assert err["param"] == "model" and err["code"] == "model_not_available" and "retired" in err["message"]
    clock.now = 1_799_366_400.0  # 2027-01-07: the sandbox keeps working unless told to close
    ok = client.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": train})
    assert ok.status_code == 200


def test_self_serve_closing_can_be_rehearsed(make_app, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    from ftops.sandbox.testing import in_process_client

    with in_process_client(make_app(closes_on="2027-01-06")) as c:
        train = upload(c, jsonl(chat_lines(10)))
        assert c.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": train}).status_code == 200
        clock.now = 1_799_366_400.0  # 2027-01-07
        err = _err(c, {"model": "gpt-4o-mini", "training_file": train})
        assert err["code"] == "model_not_available" and "closed on 2027-01-06" in err["message"]


def test_announced_cutoffs_are_enforced_only_when_rehearsed(make_app) -> None:  # type: ignore[no-untyped-def]
    """The catalogue carries the real dates; past them the sandbox still trains unless asked to rehearse."""
    from ftops.sandbox.testing import in_process_client

    with in_process_client(make_app(today="2027-02-01")) as c:
        train = upload(c, jsonl(chat_lines(10)))
        assert c.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": train}).status_code == 200
    with in_process_client(make_app(today="2027-01-10", enforce_cutoffs=True)) as c:
        train = upload(c, jsonl(chat_lines(10)))
        err = _err(c, {"model": "gpt-4o-mini", "training_file": train})
        assert "closed on 2027-01-06" in err["message"]
    with in_process_client(make_app(today="2026-12-01", enforce_cutoffs=True)) as c:
        train = upload(c, jsonl(chat_lines(10)))
        assert c.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": train}).status_code == 200
        err = _err(c, {"model": "gpt-4.1-nano", "training_file": train})  # shut down 2026-10-23
        assert "retired on 2026-10-23" in err["message"]


def test_valid_bodies_are_accepted(client: httpx.Client, train: str) -> None:
    legacy = client.post("/fine_tuning/jobs", json={
        "model": "gpt-4o-mini", "training_file": train,
        "hyperparameters": {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.3}}).json()
    assert legacy["method"] == {"type": "supervised", "supervised": {"hyperparameters": {
        "batch_size": 4, "learning_rate_multiplier": 0.3, "n_epochs": 2}}}
    assert legacy["hyperparameters"] == {"batch_size": 4, "learning_rate_multiplier": 0.3, "n_epochs": 2}
    rft = client.post("/fine_tuning/jobs", json={
        "model": "o4-mini", "training_file": train,
        "method": {"type": "reinforcement", "reinforcement": {
            "grader": {"type": "string_check", "name": "g", "input": "{{sample.output_text}}",
                       "reference": "{{item.answer}}", "operation": "eq"},
            "hyperparameters": {"reasoning_effort": "low"}}}})
    assert rft.status_code == 200, rft.text
    assert rft.json()["model"] == "o4-mini-2025-04-16"
    assert rft.json()["method"]["reinforcement"]["grader"]["type"] == "string_check"
    seeded = client.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": train,
                                                    "seed": 0, "suffix": "s" * 64}).json()
    assert seeded["seed"] == 0 and seeded["user_provided_suffix"] == "s" * 64


def test_malformed_json_and_unknown_routes(client: httpx.Client) -> None:
    r = client.post("/fine_tuning/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = client.get("/fine_tuning/nothing")
    assert r.status_code == 404 and r.json()["error"]["message"] == "Invalid URL (GET /v1/fine_tuning/nothing)"
    r = client.get("/files", params={"limit": 0})
    assert r.status_code == 400 and r.json()["error"]["param"] == "limit"
