"""VertexProvider: what `method: dpo` validates and translates to, and where credentials come from
($GOOGLE_OAUTH_ACCESS_TOKEN, else Application Default Credentials through google-auth, else a
diagnostic naming both and the `ftops[gcp]` extra), against the sandbox (in process or served)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ftops.datasets.convert import GEMINI, GEMINI_PREFERENCE
from ftops.providers.base import ModelSpec
from ftops.providers.vertex import NoGoogleCredentialsError, VertexProvider
from ftops.sandbox import SandboxApp, SandboxSettings, in_process_transport, serving
from tests.reliability.harness import run_cli

PROJECT, LOCATION = "p1", "us-central1"


def provider(app: SandboxApp, *, api_key: str | None = "ya29.t",
             hook: Callable[[httpx.Request], None] | None = None) -> VertexProvider:
    http = httpx.Client(transport=in_process_transport(app), base_url="http://sandbox.local/vertex",
                        event_hooks={"request": [hook]} if hook else None)
    return VertexProvider(http, api_key=api_key, gcp_project=PROJECT, region=LOCATION, bucket="b",
                          max_retries=0)


def spec(method: str = "dpo", base: str = "gemini-2.5-flash", **kw: Any) -> ModelSpec:
    return ModelSpec(name="m", base_model=base, method=method, **kw)


# --------------------------------------------------------------------------- validate and translate


@pytest.fixture
def p(tmp_path: Path) -> VertexProvider:
    return provider(SandboxApp(tmp_path / "db", settings=SandboxSettings()))


def problems(p: VertexProvider, s: ModelSpec) -> list[tuple[tuple[str, ...], str]]:
    return [(pr.path, pr.code) for pr in p.validate(s)]


def test_dpo_only_on_the_gemini_models_that_offer_it(p: VertexProvider) -> None:
    assert problems(p, spec(base="gemini-2.5-flash")) == []
    assert problems(p, spec(base="gemini-2.5-flash-lite")) == []
    assert problems(p, spec(base="publishers/google/models/gemini-2.5-flash")) == []
    for base in ("gemini-2.0-flash-001", "gemini-2.5-pro"):
        [pr] = p.validate(spec(base=base))
        assert (pr.path, pr.code) == (("base_model",), "provider.unsupported_method")
        assert "gemini-2.5-flash" in pr.hint and "method: supervised" in pr.hint
    assert problems(p, spec("supervised", base="gemini-2.0-flash-001")) == []
    assert problems(p, spec("reinforcement")) == [(("method",), "provider.unsupported_method")]


def test_dpo_hyperparameters_and_adapter_sizes(p: VertexProvider) -> None:
    ok = spec(hyperparameters={"beta": 0.3, "n_epochs": 2, "learning_rate_multiplier": 0.5},
              options={"adapter_size": "2"}, options_from_model=frozenset({"adapter_size"}))
    assert problems(p, ok) == []
    assert problems(p, spec(hyperparameters={"beta": 0})) == [(("hyperparameters", "beta"), "provider.invalid_value")]
    assert problems(p, spec("supervised", base="gemini-2.0-flash-001", hyperparameters={"beta": 0.1})) == [
        (("hyperparameters", "beta"), "provider.unsupported_field")]
    assert problems(p, spec("supervised", base="gemini-2.0-flash-001", options={"adapter_size": "2"},
                            options_from_model=frozenset({"adapter_size"}))) == [
        (("options", "adapter_size"), "provider.invalid_value")]
    assert problems(p, spec(hyperparameters={"batch_size": 8})) == [
        (("hyperparameters", "batch_size"), "provider.unsupported_field")]


def test_translate_dpo_and_supervised_bodies(p: VertexProvider) -> None:
    dpo = p.translate(spec(hyperparameters={"beta": 0.25, "n_epochs": 2}, options={"adapter_size": "2"}),
                      training="sha256:aa", validation=None)
    assert dpo == {"baseModel": "gemini-2.5-flash", "tuningSpec": "preferenceOptimizationSpec",
                   "hyperParameters": {"epochCount": 2, "beta": 0.25, "adapterSize": "ADAPTER_SIZE_TWO"},
                   "training_file": "sha256:aa"}
    # Supervised bodies are exactly what they were before DPO existed: fingerprints do not move.
    sft = p.translate(spec("supervised", base="gemini-2.0-flash-001", hyperparameters={"n_epochs": 3},
                           options={"adapter_size": "4"}, suffix="s"), training="sha256:aa", validation="sha256:bb")
    assert sft == {"baseModel": "gemini-2.0-flash-001", "hyperParameters": {"epochCount": 3,
                                                                            "adapterSize": "ADAPTER_SIZE_FOUR"},
                   "training_file": "sha256:aa", "validation_file": "sha256:bb", "tunedModelDisplayName": "s"}
    assert p.upload_format("gemini-2.5-flash", "dpo") == GEMINI_PREFERENCE
    assert p.upload_format("gemini-2.5-flash", "supervised") == GEMINI


# --------------------------------------------------------------------------- credentials


def test_no_token_and_no_google_auth_is_a_diagnostic_naming_both(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    app = SandboxApp(tmp_path / "db", settings=SandboxSettings())
    sent: list[httpx.Request] = []
    monkeypatch.setitem(sys.modules, "google.auth", None)  # as if google-auth were not installed
    with pytest.raises(NoGoogleCredentialsError) as exc:
        provider(app, api_key=None, hook=sent.append).list_jobs("proj")
    assert sent == []
    d = exc.value.to_diagnostic()
    assert d.code == "provider.missing_api_key" and d.summary == "no Google credentials"
    assert "GOOGLE_OAUTH_ACCESS_TOKEN" in d.detail and "google-auth" in d.detail
    assert "ftops[gcp]" in d.hint and "GOOGLE_OAUTH_ACCESS_TOKEN" in d.hint


def test_google_auth_without_adc_is_the_same_diagnostic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("google.auth")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    sent: list[httpx.Request] = []
    with pytest.raises(NoGoogleCredentialsError) as exc:
        provider(SandboxApp(tmp_path / "db"), api_key=None, hook=sent.append).list_jobs("proj")
    assert sent == []
    d = exc.value.to_diagnostic()
    assert d.code == "provider.missing_api_key"
    assert "Application Default Credentials" in d.detail and "absent.json" in d.detail
    assert "ftops[gcp]" in d.hint


def test_adc_token_is_used_when_no_token_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    google_auth = pytest.importorskip("google.auth")
    from google.oauth2.credentials import Credentials

    calls: list[Any] = []

    def default(scopes: Any = None, **kw: Any) -> tuple[Credentials, str]:
        calls.append(scopes)
        return Credentials(token="ya29.from-adc"), "adc-project"

    monkeypatch.setattr(google_auth, "default", default)
    sent: list[httpx.Request] = []
    p = provider(SandboxApp(tmp_path / "db"), api_key=None, hook=sent.append)
    assert p.list_jobs("proj") == [] and p.list_jobs("proj") == []
    assert [r.headers["Authorization"] for r in sent] == ["Bearer ya29.from-adc"] * 2
    assert calls == [["https://www.googleapis.com/auth/cloud-platform"]]  # looked up once, then reused
    p2 = provider(SandboxApp(tmp_path / "db2"), api_key="ya29.env", hook=sent.append)
    p2.list_jobs("proj")
    assert sent[-1].headers["Authorization"] == "Bearer ya29.env" and len(calls) == 1  # the token wins


def test_cli_plan_without_credentials_stops_with_the_diagnostic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("google.auth")
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    app = SandboxApp(tmp_path / "sandbox.db", settings=SandboxSettings())
    seen: list[str] = []

    def counting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen.append(environ["PATH_INFO"])
        return app(environ, start_response)

    with serving(counting) as url:
        root = tmp_path / "proj"
        (root / "data").mkdir(parents=True)
        (root / "data" / "pref.jsonl").write_text("".join(
            '{"input": {"messages": [{"role": "user", "content": "q%d"}]}, "preferred_output": [{"role": '
            '"assistant", "content": "a"}], "non_preferred_output": [{"role": "assistant", "content": "b"}]}\n' % i
            for i in range(12)))
        (root / "ftops.yaml").write_text(
            "version: 1\nproject: creds\nprovider:\n  type: vertex\n"
            f"  base_url: {url}/vertex\n  gcp_project: p1\n  bucket: training\n"
            "  max_retries: 0\n"
            "models:\n  m:\n    base_model: gemini-2.5-flash\n    method: dpo\n    training_file: data/pref.jsonl\n")
        code, out, err = run_cli(root, capsys, "plan")
    assert code == 1, out + err
    assert "error[provider.missing_api_key]" in err and "no Google credentials" in err, err
    assert "ftops[gcp]" in err and "GOOGLE_OAUTH_ACCESS_TOKEN" in err
    assert seen == []  # nothing reached the server


def test_a_dpo_job_reads_back_in_ftops_vocabulary(p: VertexProvider, tmp_path: Path) -> None:
    import hashlib
    import json

    src = tmp_path / "pref.jsonl"
    src.write_text("".join(json.dumps({"contents": [{"role": "user", "parts": [{"text": f"q{i}"}]}],
                                       "completions": [{"score": 1, "completion": {"role": "model",
                                                                                   "parts": [{"text": "a"}]}},
                                                       {"score": 0, "completion": {"role": "model",
                                                                                   "parts": [{"text": "b"}]}}]}) + "\n"
                           for i in range(10)))
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    f = p.upload_file(src, sha256=sha, display_path="pref.jsonl")
    body = p.translate(spec(hyperparameters={"beta": 0.2, "n_epochs": 2}), training=f"sha256:{sha}", validation=None)
    from ftops.providers.base import Identity

    job = p.create_job(body, Identity(project="proj", model="m", fingerprint="F"), {sha: f.id})
    got = p.get_job(job.id)
    assert got.method == {"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 2, "beta": 0.2}}}
    assert got.training_file == f.id and got.group == p.group_key("proj", "m", "F")
    assert [j.id for j in p.list_jobs("proj")] == [job.id]


def test_the_look_before_a_create_is_one_filtered_request(tmp_path: Path) -> None:
    """find_jobs asks the server for the identity's group label: one request returning only that group's
    jobs, however many jobs the project has (list_jobs pages through all of them)."""
    import hashlib
    import json

    from ftops.providers.base import Identity

    sent: list[httpx.Request] = []
    p = provider(SandboxApp(tmp_path / "db", settings=SandboxSettings()), hook=sent.append)
    src = tmp_path / "train.jsonl"
    src.write_text("".join(json.dumps({"contents": [{"role": "user", "parts": [{"text": f"q{i}"}]},
                                                    {"role": "model", "parts": [{"text": "a"}]}]}) + "\n"
                           for i in range(10)))
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    f = p.upload_file(src, sha256=sha, display_path="train.jsonl")
    body = p.translate(spec("supervised", base="gemini-2.0-flash-001"), training=f"sha256:{sha}", validation=None)
    ids = [p.create_job(body, Identity(project="proj", model=f"m{i}", fingerprint="F"), {sha: f.id}).id
           for i in range(120)]
    sent.clear()
    found = p.find_jobs(Identity(project="proj", model="m7", fingerprint="F"))
    assert [j.id for j in found] == [ids[7]]
    assert len(sent) == 1 and "ftops_group" in str(sent[0].url.params.get("filter"))
    sent.clear()
    assert len(p.list_jobs("proj")) == 120 and len(sent) == 2  # two pages of 100
