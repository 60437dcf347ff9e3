"""Valid configurations: values, defaults, interpolation, positions, round trip, find_config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from ftops.config import (
    CONFIG_FILENAME,
    DpoHyperparameters,
    FtopsConfig,
    ReinforcementHyperparameters,
    SupervisedHyperparameters,
    find_config,
    load_config,
)
from ftops.diagnostics import FtopsError

from .conftest import (
    FULL_EXAMPLE,
    FULL_FILES,
    MINIMAL,
    Failer,
    Loader,
    codes_lines,
    write_project,
)


def test_full_example_values(load: Loader, tmp_path: Path) -> None:
    loaded = load(FULL_EXAMPLE, files=FULL_FILES)
    cfg = loaded.config
    assert loaded.path == (tmp_path / CONFIG_FILENAME).absolute()
    assert loaded.root == tmp_path.absolute()
    assert loaded.warnings == []
    assert loaded.source_lines[1] == "version: 1"
    assert cfg.project == "acme-support"
    assert cfg.provider.type == "openai" and cfg.provider.api_key_env == "ACME_KEY"
    assert cfg.provider.rate_limits.job_creates_per_hour == 5
    assert cfg.pricing == {"gpt-4o-mini": 3.0, "gpt-4o-2024-08-06": 25}
    bot = cfg.models["support-bot"]
    assert bot.base_model == "gpt-4o-mini-2024-07-18"  # from ${vars.base}
    assert isinstance(bot.hyperparameters, SupervisedHyperparameters)
    assert bot.hyperparameters.normalized() == {"batch_size": "auto", "learning_rate_multiplier": 2,
                                                "n_epochs": 3}
    assert bot.integrations[0].wandb.tags == ["a", "b"]
    prefs = cfg.models["prefs"]
    assert type(prefs.hyperparameters) is DpoHyperparameters
    assert prefs.hyperparameters.normalized() == {"batch_size": "auto", "learning_rate_multiplier": "auto",
                                                  "n_epochs": 2, "beta": 0.1}
    rft = cfg.models["grader-bot"]
    assert type(rft.hyperparameters) is ReinforcementHyperparameters
    assert rft.hyperparameters.normalized()["reasoning_effort"] == "low"
    assert rft.hyperparameters.normalized()["eval_samples"] == "auto"
    assert rft.grader is not None and rft.grader["reference"] == "{{item.answer}}"
    assert loaded.dataset_path("prefs", "training_file") == (tmp_path / "data/prefs.jsonl").resolve()
    assert loaded.dataset_path("support-bot", "validation_file") == \
        (tmp_path / "data/support-val.jsonl").resolve()
    with pytest.raises(ValueError):
        loaded.dataset_path("prefs", "validation_file")


def test_defaults_and_auto_equivalence(load: Loader) -> None:
    cfg = load(MINIMAL).config
    assert cfg.project == "default"
    p = cfg.provider
    assert (p.type, p.api_key_env, p.timeout, p.max_retries, p.max_retry_wait) == \
        ("sandbox", None, 60, 5, 60)
    # Rate limits in the YAML only override; absent, each provider's declared limits apply.
    assert (p.rate_limits.job_creates_per_hour, p.rate_limits.file_uploads_per_hour) == (None, None)
    m = cfg.models["bot"]
    assert m.method == "supervised" and m.seed is None and m.metadata == {} and m.integrations == []
    explicit = load(MINIMAL + "    hyperparameters: {n_epochs: auto, batch_size: auto, "
                              "learning_rate_multiplier: auto}\n").config.models["bot"]
    assert m.hyperparameters.normalized() == explicit.hyperparameters.normalized()
    assert m.hyperparameters == explicit.hyperparameters


def test_azure_key_env_default(load: Loader) -> None:
    cfg = load(MINIMAL + "provider: {type: azure, base_url: 'https://x.openai.azure.com/openai', "
                         "api_version: 2024-10-21}\n").config
    # The key variable defaults to the provider's own, declared once in its capabilities.
    from ftops.providers import PROVIDERS
    assert cfg.provider.api_key_env is None
    assert PROVIDERS[cfg.provider.provider_type].capabilities.key_env == "AZURE_OPENAI_API_KEY"


def test_models_are_frozen(load: Loader) -> None:
    cfg = load(MINIMAL).config
    with pytest.raises(ValidationError):
        cfg.models["bot"].base_model = "other"  # type: ignore[misc]


def test_range_of_and_fallback(load: Loader) -> None:
    loaded = load(MINIMAL + "    hyperparameters:\n      n_epochs: 3\n")
    r = loaded.range_of("models", "bot", "training_file")
    assert r is not None and (r.line, r.column) == (5, 5)
    r = loaded.range_of("models", "bot", "hyperparameters", "n_epochs")
    assert r is not None and (r.line, r.column) == (7, 7)
    r = loaded.range_of("models", "bot", "seed")  # absent: the model's own line
    assert r is not None and (r.line, r.column) == (3, 3)
    r = loaded.range_of("nope", "deeper")
    assert r is not None and r.line == 1
    assert r.filename == str(loaded.path) or r.filename.endswith(CONFIG_FILENAME)


def test_relative_path_is_used_as_filename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(tmp_path, MINIMAL + "    seed: -1\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FtopsError) as info:
        load_config(Path("ftops.yaml"), environ={})
    assert str(info.value.diagnostics[0].range) == "ftops.yaml:6:11"


# ----------------------------------------------------------------------------- interpolation


def test_interpolation_types_and_env(load: Loader) -> None:
    text = MINIMAL.replace("gpt-4o-mini-2024-07-18", "${env.BASE}") + (
        "    suffix: ${vars.team}-${env.STAGE:-dev}\n"
        "    seed: ${vars.seed}\n"
        "    hyperparameters: {learning_rate_multiplier: '${vars.lr}', n_epochs: '${vars.epochs}'}\n"
        "    metadata: {literal: '$${not.a.ref}', flag: 'on=${vars.flag}', who: '${env.WHO:-}'}\n"
        "vars: {team: cx, seed: 7, lr: 0.5, epochs: 4, flag: true}\n")
    m = load(text, environ={"BASE": "gpt-4o-2024-08-06"}).config.models["bot"]
    assert m.base_model == "gpt-4o-2024-08-06"
    assert m.suffix == "cx-dev"
    assert m.seed == 7
    assert m.hyperparameters.normalized()["learning_rate_multiplier"] == 0.5
    assert m.hyperparameters.normalized()["n_epochs"] == 4
    assert m.metadata == {"literal": "${not.a.ref}", "flag": "on=true", "who": ""}


def test_env_overrides_default(load: Loader) -> None:
    m = load(MINIMAL + "    suffix: ${env.STAGE:-dev}\n", environ={"STAGE": "prod"}).config.models["bot"]
    assert m.suffix == "prod"


def test_vars_may_use_env(load: Loader) -> None:
    cfg = load(MINIMAL + "    suffix: ${vars.s}\nvars: {s: '${env.S}'}\n", environ={"S": "abc"}).config
    assert cfg.models["bot"].suffix == "abc" and cfg.vars["s"] == "abc"


@pytest.mark.parametrize("text, environ, expected", [
    (MINIMAL + "    suffix: ${vars.nope}\n", {}, [("config.unknown_variable", 6)]),
    (MINIMAL + "    suffix: ${env.UNSET_X}\n", {}, [("config.env_not_set", 6)]),
    (MINIMAL + "    suffix: a-${foo}\n", {}, [("config.bad_interpolation", 6)]),
    (MINIMAL + "vars: {a: '${vars.b}', b: x}\n", {}, [("config.bad_interpolation", 6)]),
    (MINIMAL + "    suffix: ${vars.x}\n    seed: ${env.A}${env.B}\n", {},
     [("config.unknown_variable", 6), ("config.env_not_set", 7), ("config.env_not_set", 7)]),
])
def test_interpolation_errors(fail: Failer, text: str, environ: dict[str, str],
                              expected: list[tuple[str, int]]) -> None:
    assert codes_lines(fail(text, environ=environ)) == expected


@pytest.mark.parametrize("ref", ["OPENAI_API_KEY", "MY_KEY"])
def test_api_key_env_cannot_be_interpolated(fail: Failer, ref: str) -> None:
    text = MINIMAL + f"    metadata: {{k: '${{env.{ref}}}'}}\nprovider: {{type: openai, api_key_env: MY_KEY}}\n"
    diags = fail(text, environ={"OPENAI_API_KEY": "sk-leak1", "MY_KEY": "sk-leak2"})
    assert codes_lines(diags) == [("config.secret_interpolation", 6)]
    assert "sk-leak" not in repr(diags)


def test_unknown_variable_suggestion(fail: Failer) -> None:
    diags = fail(MINIMAL + "    suffix: ${vars.tem}\nvars: {team: cx}\n")
    assert diags[0].hint == "did you mean `team`?"


def test_env_string_where_int_expected_gets_hint(fail: Failer) -> None:
    # `${env.SEED}` is typed (issue 9, item 15): "5" is 5; text that is no number gets the hint.
    diags = fail(MINIMAL + "    seed: ${env.SEED}\n", environ={"SEED": "5x"})
    assert codes_lines(diags) == [("config.invalid_value", 6)]
    assert "${env" in diags[0].hint


def test_environ_defaults_to_process_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTOPS_TEST_SUFFIX", "from-env")
    cfg = write_project(tmp_path, MINIMAL + "    suffix: ${env.FTOPS_TEST_SUFFIX}\n")
    assert load_config(cfg).config.models["bot"].suffix == "from-env"


# ----------------------------------------------------------------------------- round trip


def test_float_hyperparameters_normalise_ints(load: Loader) -> None:
    a = load(MINIMAL + "    hyperparameters: {learning_rate_multiplier: 2}\n").config.models["bot"]
    b = load(MINIMAL + "    hyperparameters: {learning_rate_multiplier: 2.0}\n").config.models["bot"]
    assert a.hyperparameters.normalized() == b.hyperparameters.normalized()
    assert isinstance(a.hyperparameters.normalized()["learning_rate_multiplier"], float)


def test_alias_bomb_is_refused_quickly(fail: Failer) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    diags = fail("version: 1\nmodels: {}\n" + "\n".join(lines) + "\n")
    assert diags[0].code == "config.yaml_syntax"


def test_round_trip_full_example(load: Loader, tmp_path: Path) -> None:
    first = load(FULL_EXAMPLE, files=FULL_FILES).config
    dumped = first.model_dump(mode="json", exclude_defaults=True)
    again = load(yaml.safe_dump(dumped, sort_keys=False), files=FULL_FILES).config
    assert again == first
    assert FtopsConfig.model_validate(first.model_dump(mode="json")) == first


def test_merge_keys_and_anchors(load: Loader) -> None:
    text = ("version: 1\nmodels:\n  a: &d\n    base_model: gpt-4o-mini-2024-07-18\n"
            "    training_file: data/train.jsonl\n  b:\n    <<: *d\n    suffix: b\n")
    loaded = load(text)
    assert loaded.config.models["b"].base_model == "gpt-4o-mini-2024-07-18"
    assert loaded.config.models["b"].suffix == "b"
    r = loaded.range_of("models", "b", "suffix")
    assert r is not None and r.line == 8


# ----------------------------------------------------------------------------- find_config


def test_find_config(tmp_path: Path) -> None:
    write_project(tmp_path, MINIMAL)
    assert find_config(tmp_path) == (tmp_path / "ftops.yaml").absolute()


def test_find_config_missing_hints_init(tmp_path: Path) -> None:
    with pytest.raises(FtopsError) as info:
        find_config(tmp_path)
    assert info.value.diagnostics[0].code == "config.not_found"
    assert "ftops init" in info.value.diagnostics[0].hint


def test_find_config_suggests_yml(tmp_path: Path) -> None:
    (tmp_path / "ftops.yml").write_text(MINIMAL)
    with pytest.raises(FtopsError) as info:
        find_config(tmp_path)
    assert "ftops.yml" in info.value.diagnostics[0].hint


def test_load_missing_file_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(FtopsError) as info:
        load_config(tmp_path / "ftops.yaml")
    assert info.value.diagnostics[0].code == "config.not_found"
    (tmp_path / "ftops.yaml").write_bytes(b"version: 1\nmodels: {}\n# \xff\xfe\n")
    with pytest.raises(FtopsError) as info:
        load_config(tmp_path / "ftops.yaml")
    assert codes_lines(info.value.diagnostics) == [("config.encoding", 3)]
