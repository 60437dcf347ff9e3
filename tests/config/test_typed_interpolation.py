"""Typed `${env.X}` and `--var KEY=VALUE` overrides (issue 9, item 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftops.config import load_config
from ftops.config.interpolate import typed_scalar
from ftops.diagnostics import FtopsError
from tests.config.conftest import MINIMAL, Loader, codes_lines, write_project


def test_a_whole_env_reference_takes_its_yaml_type(load: Loader) -> None:
    text = MINIMAL + ("    seed: ${env.SEED}\n"
                      "    hyperparameters: {n_epochs: '${env.EPOCHS:-3}', learning_rate_multiplier: '${env.LR}'}\n")
    m = load(text, environ={"SEED": "42", "LR": "0.5"}).config.models["bot"]
    assert m.seed == 42
    hp = m.hyperparameters.normalized()
    assert hp["n_epochs"] == 3 and hp["learning_rate_multiplier"] == 0.5


def test_a_typed_env_value_stays_text_where_a_string_is_wanted(load: Loader) -> None:
    text = MINIMAL + "    suffix: ${env.BUILD}\n    metadata: {build: '${env.BUILD}', on: '${env.FLAG}'}\n"
    m = load(text, environ={"BUILD": "42", "FLAG": "true"}).config.models["bot"]
    assert m.suffix == "42" and m.metadata == {"build": "42", "on": "true"}


def test_a_reference_inside_a_longer_string_stays_text(load: Loader) -> None:
    m = load(MINIMAL + "    suffix: v${env.BUILD}\n", environ={"BUILD": "42"}).config.models["bot"]
    assert m.suffix == "v42"


def test_env_value_that_is_not_a_number_is_a_clear_error(tmp_path: Path) -> None:
    cfg = write_project(tmp_path, MINIMAL + "    seed: ${env.SEED}\n")
    with pytest.raises(FtopsError) as info:
        load_config(cfg, environ={"SEED": "forty-two"})
    (d,) = info.value.diagnostics
    assert (d.code, d.range.line if d.range else 0) == ("config.invalid_value", 6) and "${env" in d.hint


@pytest.mark.parametrize("text, value", [
    ("42", 42), ("-7", -7), ("0.5", 0.5), ("1e3", 1000.0), ("true", True), ("False", False),
    ("yes", "yes"), ("0x1f", "0x1f"), ("1_000", "1_000"), ("1:30", "1:30"), (".nan", ".nan"), ("", ""),
    ("null", "null"), ("abc", "abc"),
])
def test_typed_scalar_is_yaml_1_2_core(text: str, value: object) -> None:
    got = typed_scalar(text)
    assert got == value and type(got) is type(value)


VARS = MINIMAL + "    seed: ${vars.seed}\n    suffix: ${vars.stage}\nvars: {seed: 1, stage: dev}\n"


def test_var_overrides_vars_and_is_typed(tmp_path: Path) -> None:
    cfg = write_project(tmp_path, VARS)
    m = load_config(cfg, environ={}, variables={"seed": "7", "stage": "123"}).config.models["bot"]
    assert m.seed == 7 and m.suffix == "123"
    assert load_config(cfg, environ={}).config.models["bot"].seed == 1


def test_var_for_an_undeclared_variable_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    cfg = write_project(tmp_path, VARS)
    with pytest.raises(FtopsError) as info:
        load_config(cfg, environ={}, variables={"sed": "7"})
    assert codes_lines(info.value.diagnostics) == [("config.unknown_variable", 8)]
    assert info.value.diagnostics[0].hint == "did you mean `seed`?"
