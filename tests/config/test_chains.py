"""`base_model: ${models.NAME.fine_tuned_model}`: chains survive loading; bad ones are errors with file:line."""

from __future__ import annotations

from ftops.config.interpolate import chain_upstream
from ftops.config.loader import chain_order, root_base_model
from tests.config.conftest import MINIMAL, Failer, Loader, codes_lines


def _model(name: str, base: str, extra: str = "") -> str:
    return f"  {name}:\n    base_model: {base}\n    training_file: data/train.jsonl\n{extra}"


def test_a_reference_to_another_model_survives_loading_as_a_reference(load: Loader) -> None:
    loaded = load(MINIMAL + _model("stage2", "${models.bot.fine_tuned_model}"))
    cfg = loaded.config
    assert chain_upstream(cfg.models["stage2"].base_model) == "bot"
    assert chain_upstream(cfg.models["bot"].base_model) is None
    assert root_base_model(cfg, "stage2") == "gpt-4o-mini-2024-07-18"
    assert chain_order(cfg) == ["bot", "stage2"]


def test_upstream_comes_first_whatever_the_names(load: Loader) -> None:
    text = "version: 1\nmodels:\n" + _model("a", "${models.c.fine_tuned_model}") + _model(
        "b", "gpt-4o-mini-2024-07-18") + _model("c", "${models.b.fine_tuned_model}")
    assert chain_order(load(text).config) == ["b", "c", "a"]


def test_a_cycle_is_a_config_error_naming_the_cycle(fail: Failer) -> None:
    text = "version: 1\nmodels:\n" + _model("a", "${models.c.fine_tuned_model}") + _model(
        "b", "${models.a.fine_tuned_model}") + _model("c", "${models.b.fine_tuned_model}") + _model(
        "self", "${models.self.fine_tuned_model}")
    diags = fail(text)
    assert codes_lines(diags) == [("config.chain_cycle", 4), ("config.chain_cycle", 13)]
    assert "models.a → models.c → models.b → models.a" in diags[0].detail
    assert "models.self → models.self" in diags[1].detail


def test_an_undeclared_model_or_another_provider_is_an_error_with_its_line(fail: Failer) -> None:
    text = ("version: 1\nproviders:\n  other: {type: together}\nmodels:\n"
            + _model("bot", "gpt-4o-mini-2024-07-18")
            + _model("typo", "${models.bott.fine_tuned_model}")
            + _model("far", "${models.bot.fine_tuned_model}", "    provider: other\n"))
    diags = fail(text)
    assert codes_lines(diags) == [("config.unknown_model_reference", 9), ("config.chain_across_providers", 12)]
    assert "bot" in diags[0].hint


def test_a_reference_anywhere_but_a_whole_base_model_is_refused(fail: Failer) -> None:
    diags = fail(MINIMAL + "    suffix: x-${models.bot.fine_tuned_model}\n")
    assert codes_lines(diags) == [("config.bad_interpolation", 6)]
