"""The secret guard checks values, not names (issue 10, items 3 and 9).

No value of a key variable, and nothing that looks like an API key, may reach any value of the
loaded configuration (metadata, suffix, vars...); and a key pasted where a variable name belongs
is refused with a redacted prefix. Nothing these tests feed in may come back out in a diagnostic,
its hint, or the source lines the CLI prints under it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ftops.config import load_config
from ftops.config.secrets import key_variable_names, secret_values
from ftops.diagnostics import FtopsError, find_api_key, redact_text

from .conftest import MINIMAL, codes_lines, write_project

KEY = "sk-proj-Zx81kQ0pL2mN7vB4cX9aS3dF6gH1jK5lQ8wE2rT4yU"
AZURE_KEY = "3f9a1c2b7d4e8f60a1b2c3d4e5f60718"  # hex, no recognisable prefix


def _refused(tmp_path: Path, text: str, environ: dict[str, str]) -> tuple[list[tuple[str, int]], str]:
    with pytest.raises(FtopsError) as info:
        load_config(write_project(tmp_path, text), environ=environ)
    diags = info.value.diagnostics
    printed = repr(diags) + str(info.value) + "\n".join(info.value.source_lines)  # type: ignore[attr-defined]
    return codes_lines(diags), printed


@pytest.mark.parametrize("text, environ", [
    # api_key_env itself interpolated: the name-based guard never saw `OPENAI_API_KEY`
    (MINIMAL + "    metadata: {k: '${env.MY_KEY}'}\nprovider: {type: openai, api_key_env: '${env.KEY_VAR}'}\n",
     {"KEY_VAR": "MY_KEY", "MY_KEY": AZURE_KEY}),
    # the key's value also sits in a second variable
    (MINIMAL + "    metadata: {k: '${env.COPY}'}\nprovider: {type: openai, api_key_env: MY_KEY}\n",
     {"MY_KEY": AZURE_KEY, "COPY": AZURE_KEY}),
    # embedded in a longer string, through vars
    (MINIMAL + "    metadata: {k: 'x-${vars.v}-y'}\nvars: {v: '${env.COPY}'}\nprovider: {type: openai, api_key_env: MY_KEY}\n",
     {"MY_KEY": AZURE_KEY, "COPY": AZURE_KEY}),
    # the key variable's value with surrounding whitespace (as `export X="$(cat key)\n"` leaves it)
    (MINIMAL + "    metadata: {k: '${env.COPY}'}\nprovider: {type: openai, api_key_env: MY_KEY}\n",
     {"MY_KEY": AZURE_KEY + "\n", "COPY": AZURE_KEY}),
    # a literal key in metadata: no variable at all
    (MINIMAL + f"    metadata: {{k: {KEY}}}\n", {}),
])
def test_a_key_value_in_metadata_is_refused_wherever_it_came_from(tmp_path: Path, text: str,
                                                                  environ: dict[str, str]) -> None:
    codes, printed = _refused(tmp_path, text, environ)
    assert ("config.secret_value", 6) in codes, codes
    for secret in (KEY, AZURE_KEY, KEY[-16:], AZURE_KEY[-16:]):
        assert secret not in printed


@pytest.mark.parametrize("text, line", [
    (MINIMAL + f"    suffix: ghp_{'a1' * 18}\n", 6),
    (MINIMAL.replace("gpt-4o-mini-2024-07-18", f"ghp_{'a1' * 18}"), 4),
    (MINIMAL + f"vars: {{unused: ghp_{'a1' * 18}}}\n", 6),
])
def test_a_key_like_value_in_any_field_is_refused(tmp_path: Path, text: str, line: int) -> None:
    codes, printed = _refused(tmp_path, text, {})
    assert ("config.secret_value", line) in codes
    assert "a1" * 18 not in printed


def test_a_secret_as_a_metadata_key_is_refused(tmp_path: Path) -> None:
    codes, printed = _refused(tmp_path, MINIMAL + f"    metadata: {{'{KEY}': x}}\n", {})
    assert codes == [("config.secret_value", 6)]
    assert KEY[10:] not in printed


def test_ordinary_values_that_merely_start_like_keys_pass(tmp_path: Path) -> None:
    text = MINIMAL + "    suffix: sk-support-bot-v2-experiment\n    metadata: {team: fw_team_alpha_beta_gamma}\n"
    loaded = load_config(write_project(tmp_path, text), environ={"OPENAI_API_KEY": "short"})
    assert loaded.config.models["bot"].suffix == "sk-support-bot-v2-experiment"


def test_key_variable_collector_takes_every_provider_block() -> None:
    data = {"provider": {"api_key_env": "A"}, "providers": {"x": {"api_key_env": "B"}, "y": {"type": "t"}}}
    names = key_variable_names(data)
    assert {"OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "A", "B"} <= set(names)
    assert secret_values({"A": "  secret-value-1 \n", "B": "tiny"}, names) == {"secret-value-1": "A"}


@pytest.mark.parametrize("key, found", [
    ("sk-proj-Zx81kQ0pL2mN7vB4cX9aS3dF6gH1jK5lQ8wE2rT4yU", True),
    ("sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL", True),
    ("tgp_v1_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU", True),
    ("fw_3ZkQ9xLm2Np8Rt5Vw7Yb1Cd4Fg6Hj", True),
    ("AKIAIOSFODNN7EXAMPLE", True),
    ("ghp_" + "a1" * 18, True),
    ("sk-support-bot-v2-experiment", False),
    ("gpt-4o-mini-2024-07-18", False),
])
def test_find_api_key(key: str, found: bool) -> None:
    assert (find_api_key(f"x {key} y") == key) is found
    if found:
        assert key not in redact_text(f"before {key} after")


# ---------------------------------------------------------------------------- item 9: pasted keys


@pytest.mark.parametrize("value", [KEY, "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL", AZURE_KEY + "-x",
                                   "a" + AZURE_KEY])
def test_key_pasted_as_api_key_env_is_refused_with_a_redacted_prefix(tmp_path: Path, value: str) -> None:
    codes, printed = _refused(tmp_path, MINIMAL + f"provider: {{type: openai, api_key_env: {value}}}\n", {})
    assert codes == [("config.inline_secret", 6)]
    assert value[:4] + "…" in printed
    assert value[6:] not in printed


def test_short_invalid_variable_name_is_an_ordinary_error(tmp_path: Path) -> None:
    codes, _ = _refused(tmp_path, MINIMAL + "provider: {type: openai, api_key_env: 'MY-KEY'}\n", {})
    assert codes == [("config.invalid_value", 6)]


@pytest.mark.parametrize("key", ["api_kye", "apikey_env", "openai_key", "auth_token"])
@pytest.mark.parametrize("value", [KEY, AZURE_KEY])
def test_misspelt_provider_key_never_echoes_the_value(tmp_path: Path, key: str, value: str) -> None:
    text = "version: 1\nmodels: {}\nprovider:\n  type: openai\n  " + f"{key}: {value}\n"
    codes, printed = _refused(tmp_path, text, {})
    assert len(codes) == 1 and codes[0][1] == 5 and codes[0][0] in ("config.inline_secret", "config.unknown_field")
    assert value[6:] not in printed


def test_misspelt_api_key_env_gets_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(FtopsError) as info:
        load_config(write_project(tmp_path, MINIMAL + f"provider: {{type: openai, api_key_nev: {KEY}}}\n"), environ={})
    assert "`api_key_env`" in info.value.diagnostics[0].hint
