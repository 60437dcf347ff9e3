"""Every error and warning code, on the line it belongs to (1-based, counting b"\\n" only)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ftops.datasets.check as check_mod
from ftops.datasets import DatasetReport, check_dataset
from tests.datasets.conftest import WriteLines, chat


def codes(issues: list[Any]) -> list[tuple[int | None, str]]:
    return [(i.line, i.code) for i in issues]


def only_error(r: DatasetReport, code: str, line: int | None) -> None:
    assert codes(r.errors) == [(line, code)], r.errors
    assert not r.valid


def msg(role: str, content: Any = "x", **kw: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **kw}


def example(*messages: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"messages": list(messages), **top}


SYS = msg("system", "You are terse.")
USER = msg("user", "hi")
ASSISTANT = msg("assistant", "hello")


def test_valid_file_has_no_issues(valid_chat: Callable[..., Path]) -> None:
    r = check_dataset(valid_chat())
    assert r.valid and r.errors == [] and r.warnings == []
    assert r.format == "chat" and r.stats.examples == 60


@pytest.mark.parametrize("bad,code", [
    ("", "blank_line"),
    ("   \r", "blank_line"),
    ('{"messages": [', "invalid_json"),
    ('{"messages": NaN}', "invalid_json"),
    ('{"a": Infinity}', "invalid_json"),
    ("[1, 2]", "not_an_object"),
    ('"just a string"', "not_an_object"),
    ({"prompt": "p", "completion": " c"}, "format_mismatch"),
    ({"messages": "hi"}, "wrong_type"),
    ({"messages": []}, "missing_key"),
    (example(SYS, USER, msg("assistant", "ok", wieght=1)), "unknown_message_key"),
    (example(SYS, msg("bot", "hi"), ASSISTANT), "unknown_role"),
    (example(SYS, {"content": "hi"}, ASSISTANT), "missing_key"),
    (example(SYS, {"role": "user"}, ASSISTANT), "missing_content"),
    (example(SYS, msg("user", ""), ASSISTANT), "empty_content"),
    (example(SYS, msg("user", 5), ASSISTANT), "wrong_type"),
    (example(SYS, USER), "no_assistant_message"),
    (example(SYS, USER, msg("assistant", "a", weight=0)), "no_assistant_message"),
    (example(SYS, USER, msg("assistant", "a", weight=2)), "invalid_weight"),
    (example(SYS, USER, msg("assistant", "a", weight=True)), "invalid_weight"),
    (example(SYS, msg("user", "a", weight=1), ASSISTANT), "invalid_weight"),
    (example(SYS, USER, {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}),
     "invalid_tool_arguments"),
    (example(SYS, USER, {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}),
     "invalid_tool_arguments"),
    (example(SYS, USER, ASSISTANT, tools="nope"), "wrong_type"),
    (example(SYS, USER, ASSISTANT, parallel_tool_calls="yes"), "wrong_type"),
    (example(SYS, msg("tool", "result"), ASSISTANT), "missing_key"),
])
def test_error_codes_on_their_line(valid_chat: Callable[..., Path], bad: Any, code: str) -> None:
    r = check_dataset(valid_chat(bad, at=7))
    assert (7, code) in codes(r.errors), r.errors
    assert {c for _, c in codes(r.errors)} == {code}
    assert not r.valid


def test_line_numbers_count_newlines_only(write_lines: WriteLines) -> None:
    # A form feed / vertical tab / U+2028 inside a line must not shift line numbers.
    lines: list[Any] = [chat(i) for i in range(20)]
    lines[2] = example(SYS, msg("user", "a\u2028b\x0cc\x0bd"), ASSISTANT)
    lines.insert(10, "")
    r = check_dataset(write_lines(lines))
    assert codes(r.errors) == [(11, "blank_line")]


def test_invalid_utf8(tmp_path: Path) -> None:
    good = "\n".join(json.dumps(chat(i)) for i in range(20)).encode()
    p = tmp_path / "d.jsonl"
    p.write_bytes(good + b'\n{"messages": [{"role": "user", "content": "\xff\xfe"}]}\n' + good + b"\n")
    r = check_dataset(p)
    assert codes(r.errors) == [(21, "invalid_utf8")]


def test_bom(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + "\n".join(json.dumps(chat(i)) for i in range(20)).encode() + b"\n")
    r = check_dataset(p)
    assert codes(r.errors) == [(1, "bom")]
    assert r.format == "chat" and r.stats.examples == 20


def test_last_line_without_newline(write_lines: WriteLines) -> None:
    lines: list[Any] = [chat(i) for i in range(20)] + ['{"messages": [']
    r = check_dataset(write_lines(lines, trailing_newline=False))
    assert codes(r.errors) == [(21, "invalid_json")]


def test_too_few_and_few_examples(write_lines: WriteLines) -> None:
    r = check_dataset(write_lines([chat(i) for i in range(9)]))
    only_error(r, "too_few_examples", None)
    r = check_dataset(write_lines([chat(i) for i in range(10)]))
    assert r.valid and codes(r.warnings) == [(None, "few_examples")]
    r = check_dataset(write_lines([chat(i) for i in range(50)]))
    assert r.warnings == []
    r = check_dataset(write_lines([chat(i) for i in range(3)]), purpose="validation")
    assert r.valid and r.warnings == []


def test_file_too_large(valid_chat: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check_mod, "MAX_FILE_BYTES", 1000)
    p = valid_chat()
    only_error(check_dataset(p), "file_too_large", None)
    assert check_dataset(p, uploads_api=True).valid


def test_images(valid_chat: Callable[..., Path]) -> None:
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG....").decode()
    img = {"type": "image_url", "image_url": {"url": png}}
    text = {"type": "text", "text": "what is this?"}
    ok = example(SYS, msg("user", [text, img]), ASSISTANT)
    assert check_dataset(valid_chat(ok, at=3)).valid

    cases = {
        "image_not_in_user_message": example(SYS, USER, msg("assistant", [img])),
        "too_many_images": example(SYS, msg("user", [img] * 11), ASSISTANT),
        "image_format": example(SYS, msg("user", [{"type": "image_url", "image_url": {
            "url": "data:image/gif;base64,R0lGOD"}}]), ASSISTANT),
        "image_too_large": example(SYS, msg("user", [{"type": "image_url", "image_url": {
            "url": "data:image/jpeg;base64," + "A" * (14 * 1024 * 1024)}}]), ASSISTANT),
    }
    for code, bad in cases.items():
        r = check_dataset(valid_chat(bad, at=4))
        assert (4, code) in codes(r.errors), (code, r.errors)
    r = check_dataset(valid_chat(example(SYS, msg("user", [{"type": "image_url", "image_url": {
        "url": "https://example.com/cat.gif"}}]), ASSISTANT), at=4))
    assert codes(r.errors) == [(4, "image_format")]


def test_tool_calls_and_functions_valid(valid_chat: Callable[..., Path]) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    ex = example(SYS, USER, {"role": "assistant", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}, ASSISTANT,
        tools=tools, parallel_tool_calls=False)
    legacy = example(SYS, USER, {"role": "assistant", "content": None,
                                 "function_call": {"name": "f", "arguments": "{}"}},
                     {"role": "function", "name": "f", "content": "42"}, ASSISTANT,
                     functions=[{"name": "f", "parameters": {}}])
    r = check_dataset(valid_chat(ex, at=2))
    assert r.valid, r.errors
    r = check_dataset(valid_chat(legacy, at=2))
    assert r.valid, r.errors


def test_developer_role_counts_as_system(write_lines: WriteLines) -> None:
    lines = [example(msg("developer", "be brief"), USER, msg("assistant", f"a{i}")) for i in range(60)]
    r = check_dataset(write_lines(lines))
    assert r.valid and r.warnings == []


def test_warnings(write_lines: WriteLines) -> None:
    lines: list[Any] = [chat(i) for i in range(60)]
    lines[3] = chat(3, system=False)
    lines[8] = chat(8, system=False)
    lines[10] = chat(10, metadata={"source": "x"})
    lines[20] = chat(0)  # duplicate of line 1
    lines[30] = example(SYS, msg("user", "write to jane.roe@example.org"), ASSISTANT)
    lines[31] = example(SYS, msg("user", "my card is 4242 4242 4242 4242"), ASSISTANT)
    lines[32] = example(SYS, msg("user", "call me on +1 (415) 555-0199"), ASSISTANT)
    lines[33] = example(SYS, msg("user", "key sk-proj-" + "a1B2" * 10), ASSISTANT)
    lines[34] = example(SYS, msg("user", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n"), ASSISTANT)
    lines[35] = example(SYS, msg("user", "order 12345678901234 shipped 2024-05-01"), ASSISTANT)
    r = check_dataset(write_lines(lines))
    assert codes(r.errors) == [(34, "sensitive_api_key"), (35, "sensitive_private_key")]  # secrets: errors
    got = codes(r.warnings)
    assert (4, "missing_system_message") in got
    assert (11, "extra_key") in got
    assert (21, "duplicate_example") in got
    assert (31, "sensitive_email") in got
    assert (32, "sensitive_card_number") in got
    assert (33, "sensitive_phone") in got
    assert not [c for ln, c in got if ln == 36], "order numbers and dates are not sensitive"
    missing = next(i for i in r.warnings if i.code == "missing_system_message")
    assert "2 example" in missing.message


def test_truncation_warning_and_trained_tokens(write_lines: WriteLines) -> None:
    long = example(SYS, msg("user", "hello " * 17_000), ASSISTANT)
    lines: list[Any] = [chat(i) for i in range(59)] + [long]
    r = check_dataset(write_lines(lines), base_model="gpt-3.5-turbo-0125")
    assert (60, "truncated") in codes(r.warnings)
    s = r.stats
    assert s.examples_over_limit == 1 and s.tokens_max > 16_385
    assert s.trained_tokens_per_epoch == s.tokens_total - s.tokens_max + 16_385
    r = check_dataset(write_lines(lines), base_model="gpt-4o-mini-2024-07-18")
    assert "truncated" not in {c for _, c in codes(r.warnings)}
    assert r.stats.trained_tokens_per_epoch == r.stats.tokens_total


def test_issue_cap(write_lines: WriteLines) -> None:
    lines: list[Any] = [chat(i) for i in range(20)] + [""] * 120
    r = check_dataset(write_lines(lines))
    blanks = [i for i in r.errors if i.code == "blank_line"]
    assert len(blanks) == 51  # 50 shown + one "more not shown" summary
    assert blanks[-1].line is None and "120 in total" in blanks[-1].message


def test_diagnostics_and_json(valid_chat: Callable[..., Path]) -> None:
    r = check_dataset(valid_chat("", at=3))
    d = r.diagnostics("train.jsonl")
    assert [(x.code, x.range.line if x.range else None, x.range.filename if x.range else None)
            for x in d] == [("dataset.blank_line", 3, "train.jsonl")]
    j = r.to_json()
    assert j["valid"] is False and j["errors"] == [
        {"line": 3, "code": "blank_line", "message": "blank line",
         "hint": "remove empty lines; every line must be one JSON object"}]
    assert set(j) >= {"path", "format", "valid", "errors", "warnings", "stats"}
    json.dumps(j)


def test_lines_longer_than_the_read_block(write_lines: WriteLines, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check_mod, "BLOCK", 64)
    lines: list[Any] = [chat(i) for i in range(30)]
    lines[5] = example(SYS, msg("user", "long " * 200), ASSISTANT)
    lines[6] = ""
    p = write_lines(lines, trailing_newline=False)
    r = check_dataset(p)
    assert codes(r.errors) == [(7, "blank_line")]
    assert r.stats.examples == 29
    monkeypatch.setattr(check_mod, "BLOCK", 4 * 1024 * 1024)
    assert check_dataset(p) == r


def test_overlong_line_is_skipped_not_buffered(write_lines: WriteLines, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check_mod, "BLOCK", 64)
    monkeypatch.setattr(check_mod, "MAX_LINE_BYTES", 1000)
    lines: list[Any] = [chat(i) for i in range(30)]
    lines[4] = example(SYS, msg("user", "x" * 5000), ASSISTANT)
    lines[29] = "y" * 3000  # last line, no newline after it
    r = check_dataset(write_lines(lines, trailing_newline=False))
    assert codes(r.errors) == [(5, "line_too_long"), (30, "line_too_long")]
    assert r.stats.examples == 28


def test_file_over_the_uploads_limit_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "huge.jsonl"
    with open(p, "wb") as f:
        f.truncate(9 * 2**30)  # sparse
    real_open = open

    def no_open(file: Any, *a: Any, **kw: Any) -> Any:
        assert str(file) != str(p), "bytes of a 9 GiB file were read"
        return real_open(file, *a, **kw)

    monkeypatch.setattr("builtins.open", no_open)
    r = check_dataset(p, cache_dir=tmp_path / "cache", uploads_api=True)
    assert codes(r.errors) == [(None, "file_too_large")] and r.size == 9 * 2**30
