"""Secrets in training data are errors, found in the decoded strings, and accepted only by id
(issue 10, item 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftops.config import load_config
from ftops.datasets import check_dataset
from ftops.datasets.sensitive import finding_id, scan_example
from ftops.diagnostics import Severity
from tests.reliability.harness import run_cli

KEY = "sk-proj-" + "a1B2" * 10
SYS = {"role": "system", "content": "be brief"}
ANSWER = {"role": "assistant", "content": "ok"}


def _line(content: str) -> str:
    return json.dumps({"messages": [SYS, {"role": "user", "content": content}, ANSWER]})


def _escape_all(text: str) -> str:
    """A JSON string literal with every character escaped as \\uXXXX (valid JSON, same value)."""
    return '"' + "".join(f"\\u{ord(c):04x}" for c in text) + '"'


def _write(tmp_path: Path, lines: list[str]) -> Path:
    filler = [_line(f"question {i}") for i in range(60)]
    p = tmp_path / "train.jsonl"
    p.write_text("\n".join(lines + filler) + "\n")
    return p


@pytest.mark.parametrize("content, code", [
    (KEY, "sensitive_api_key"),
    ("mail jane.roe@example.org", "sensitive_email"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIE", "sensitive_private_key"),
])
def test_json_escaped_secrets_and_addresses_are_found(tmp_path: Path, content: str, code: str) -> None:
    raw = '{"messages": [{"role": "user", "content": ' + _escape_all(content) + '}, ' \
          '{"role": "assistant", "content": "ok"}]}'
    assert content not in raw and json.loads(raw)["messages"][0]["content"] == content
    r = check_dataset(_write(tmp_path, [raw]))
    found = [(i.line, i.code) for i in r.errors + r.warnings]
    assert (1, code) in found, found


def test_escaped_slash_and_partial_escapes() -> None:
    obj = {"messages": [{"role": "user", "content": "a\u0040b.example.com and " + KEY}]}
    raw = json.dumps(obj).encode()
    got = {c for c, _ in scan_example(obj, raw.decode(), raw)}
    assert {"sensitive_email", "sensitive_api_key"} <= got


def test_secrets_are_errors_that_block_a_plan_with_an_id_and_no_key(tmp_path: Path) -> None:
    r = check_dataset(_write(tmp_path, [_line(f"key {KEY}"), _line("AKIAIOSFODNN7EXAMPLE and ghp_" + "x9" * 18)]))
    assert not r.valid
    assert [(i.line, i.code) for i in r.errors] == [(1, "sensitive_api_key"), (2, "sensitive_api_key"),
                                                     (2, "sensitive_api_key")]
    text = json.dumps(r.to_json())
    assert KEY[8:] not in text and "IOSFODNN7EXAMPLE" not in text
    assert finding_id(KEY) in r.errors[0].message and finding_id(KEY) in r.errors[0].hint


def test_an_accepted_finding_is_a_warning_and_only_that_one(tmp_path: Path) -> None:
    other = "sk-" + "Zz9" * 12
    r = check_dataset(_write(tmp_path, [_line(f"key {KEY} and {other}")]))
    assert len(r.errors) == 2
    diags = r.diagnostics("train.jsonl", accept=[finding_id(KEY)])
    assert [(d.severity, d.code) for d in diags if "API key" in d.summary] == [
        (Severity.WARNING, "dataset.accepted_secret"), (Severity.ERROR, "dataset.sensitive_api_key")]
    assert not r.accepting([finding_id(KEY)]).valid
    assert r.accepting([finding_id(KEY), finding_id(other)]).valid


def test_allow_secrets_in_config(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.jsonl").write_text(_line("x") + "\n")
    base = "version: 1\nmodels:\n  bot: {base_model: gpt-4o-mini-2024-07-18, training_file: data/t.jsonl}\n"
    (tmp_path / "ftops.yaml").write_text(base + f"allow_secrets: ['{finding_id(KEY)}']\n")
    assert load_config(tmp_path / "ftops.yaml", environ={}).config.allow_secrets == [finding_id(KEY)]
    (tmp_path / "ftops.yaml").write_text(base + f"allow_secrets: ['{KEY}']\n")  # the key itself: refused
    with pytest.raises(Exception) as info:
        load_config(tmp_path / "ftops.yaml", environ={})
    assert KEY[8:] not in repr(getattr(info.value, "diagnostics", info.value))


def test_dataset_check_cli_refuses_and_accepts_by_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, [_line(f"key {KEY}")])
    code, out, err = run_cli(tmp_path, capsys, "dataset", "check", str(path))
    assert code == 1 and "error[dataset.sensitive_api_key]" in err and KEY[8:] not in out + err
    code, out, err = run_cli(tmp_path, capsys, "dataset", "check", str(path), "--allow-secret", finding_id(KEY))
    assert code == 0, out + err
    assert "accepted_secret" in err
