"""translate: a pure function whose output matches the spec's CreateFineTuningJobRequest."""

from __future__ import annotations

import copy
import json

import httpx
import jsonschema
import pytest

from ftops.providers import ModelSpec, OpenAIProvider

from . import spec

SUPERVISED = {
    "name": "support-bot", "base_model": "gpt-4o-mini-2024-07-18", "method": "supervised",
    "hyperparameters": {"n_epochs": 3, "batch_size": "auto", "learning_rate_multiplier": 2},
    "suffix": "support", "seed": 42, "metadata": {"team": "cx"},
    "integrations": [{"type": "wandb", "wandb": {"project": "p", "tags": ["a"]}}],
}
DPO = {"name": "d", "base_model": "gpt-4o-2024-08-06", "method": "dpo",
       "hyperparameters": {"beta": 0.1, "n_epochs": "auto"}, "seed": 0}
RFT = {"name": "r", "base_model": "o4-mini-2025-04-16", "method": "reinforcement",
       "hyperparameters": {"reasoning_effort": "medium", "compute_multiplier": 1.5, "eval_interval": 5},
       "grader": {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
                  "reference": "{{item.answer}}", "operation": "eq"}}


@pytest.fixture
def provider() -> OpenAIProvider:
    return OpenAIProvider(httpx.Client(base_url="http://unused/v1"), api_key=None)


def body(provider: OpenAIProvider, args: dict, validation: str | None = "file-val") -> dict:
    return provider.translate(ModelSpec(**copy.deepcopy(args)), training="file-abc", validation=validation)


def test_supervised_body_shape(provider):
    assert body(provider, SUPERVISED) == {
        "model": "gpt-4o-mini-2024-07-18", "training_file": "file-abc", "validation_file": "file-val",
        "method": {"type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 3, "learning_rate_multiplier": 2.0}}},
        "suffix": "support", "seed": 42, "metadata": {"team": "cx"},
        "integrations": [{"type": "wandb", "wandb": {"project": "p", "tags": ["a"]}}],
    }


def test_auto_and_absent_give_the_same_body(provider):
    a = body(provider, {"name": "x", "base_model": "m", "hyperparameters": {"n_epochs": "auto"}}, None)
    b = body(provider, {"name": "x", "base_model": "m", "hyperparameters": {}}, None)
    c = body(provider, {"name": "x", "base_model": "m"}, None)
    assert a == b == c == {"model": "m", "training_file": "file-abc", "method": {"type": "supervised"}}


def test_fingerprint_material_leaves_out_metadata_only(provider):
    b = body(provider, SUPERVISED)
    assert provider.fingerprint_material(b) == {k: v for k, v in b.items() if k != "metadata"}


def test_pure_and_does_not_alias_inputs(provider):
    spec_ = ModelSpec(**copy.deepcopy(SUPERVISED))
    b1 = provider.translate(spec_, training="f", validation=None)
    b1["integrations"][0]["wandb"]["tags"].append("mutated")
    b1["method"]["supervised"]["hyperparameters"]["n_epochs"] = 99
    b2 = provider.translate(spec_, training="f", validation=None)
    assert json.dumps(b2, sort_keys=True) == json.dumps(provider.translate(spec_, training="f", validation=None),
                                                       sort_keys=True)
    assert b2["method"]["supervised"]["hyperparameters"]["n_epochs"] == 3


@pytest.mark.parametrize("args", [SUPERVISED, DPO, RFT], ids=["supervised", "dpo", "reinforcement"])
def test_body_validates_against_spec(provider, openapi_spec_path, args):
    spec.validate(openapi_spec_path, "CreateFineTuningJobRequest", body(provider, args))


def test_spec_validation_can_fail(openapi_spec_path):
    """Guard: the validator really checks (a suffix over 64 characters is refused)."""
    with pytest.raises(jsonschema.ValidationError):
        spec.validate(openapi_spec_path, "CreateFineTuningJobRequest",
                      {"model": "m", "training_file": "f", "suffix": "x" * 65})
    with pytest.raises(jsonschema.ValidationError):
        spec.validate(openapi_spec_path, "CreateFineTuningJobRequest",
                      {"model": "m", "training_file": "f", "method": {"type": "supervised", "supervised": {
                          "hyperparameters": {"n_epochs": 0}}}})


def test_azure_body_adds_training_type():
    from ftops.providers import AzureOpenAIProvider
    p = AzureOpenAIProvider(httpx.Client(base_url="http://unused/openai/v1"), api_key="k")
    b = p.translate(ModelSpec(name="x", base_model="gpt-4o-mini-2024-07-18", options={"training_type": "global_standard"}),
                    training="f", validation=None)
    assert b["trainingType"] == "globalstandard"
