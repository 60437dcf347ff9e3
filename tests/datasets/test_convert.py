"""Conversion to Gemini `contents`, Bedrock `bedrock-conversation-2024` and prompt/completion: what
converts has the target's documented shape; what cannot is refused with its line number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ftops.datasets.convert import (
    BEDROCK_CONVERSATION,
    CONVERTER_VERSION,
    GEMINI,
    GEMINI_PREFERENCE,
    PROMPT_COMPLETION,
    ConversionError,
    convert_cached,
    convert_example,
    convert_file,
)
from ftops.datasets.hashing import sha256_file

SYSTEM = {"role": "system", "content": "You are terse."}
USER = {"role": "user", "content": "Hi?"}
ASSISTANT = {"role": "assistant", "content": "Hello."}


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"messages": list(messages), **extra}


def test_gemini_single_turn_with_system_prompt() -> None:
    out = convert_example(chat(SYSTEM, USER, ASSISTANT), GEMINI)
    assert out == {"systemInstruction": {"role": "system", "parts": [{"text": "You are terse."}]},
                   "contents": [{"role": "user", "parts": [{"text": "Hi?"}]},
                                {"role": "model", "parts": [{"text": "Hello."}]}]}


def test_gemini_multi_turn_and_text_parts() -> None:
    parts = {"role": "user", "content": [{"type": "text", "text": "And "}, {"type": "text", "text": "then?"}]}
    out = convert_example(chat(USER, ASSISTANT, parts, {**ASSISTANT, "weight": 1}), GEMINI)
    assert "systemInstruction" not in out
    assert [c["role"] for c in out["contents"]] == ["user", "model", "user", "model"]
    assert out["contents"][2]["parts"] == [{"text": "And then?"}]


def test_bedrock_conversation_shape() -> None:
    out = convert_example(chat({"role": "developer", "content": "Be kind."}, USER, ASSISTANT, USER, ASSISTANT),
                          BEDROCK_CONVERSATION)
    assert out["schemaVersion"] == "bedrock-conversation-2024"
    assert out["system"] == [{"text": "Be kind."}]
    assert out["messages"][0] == {"role": "user", "content": [{"text": "Hi?"}]}
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user", "assistant"]
    assert all(list(m) == ["role", "content"] for m in out["messages"])


def test_prompt_completion_both_ways() -> None:
    assert convert_example(chat(USER, ASSISTANT), PROMPT_COMPLETION) == {"prompt": "Hi?", "completion": "Hello."}
    pc = {"prompt": "2+2=", "completion": "4"}
    assert convert_example(pc, PROMPT_COMPLETION) == pc
    assert convert_example(pc, BEDROCK_CONVERSATION)["messages"][1] == {"role": "assistant",
                                                                        "content": [{"text": "4"}]}


@pytest.mark.parametrize(("example", "target", "code"), [
    (chat(USER, {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                                       "function": {"name": "f", "arguments": "{}"}}]},
          {"role": "tool", "tool_call_id": "c1", "content": "1"}, ASSISTANT), GEMINI, "convert.unsupported_tools"),
    (chat(USER, ASSISTANT, tools=[{"type": "function", "function": {"name": "f"}}]), BEDROCK_CONVERSATION,
     "convert.unsupported_tools"),
    (chat(USER, {**ASSISTANT, "weight": 0}, USER, ASSISTANT), GEMINI, "convert.unsupported_weight"),
    (chat(USER, {**ASSISTANT, "weight": 0}, USER, ASSISTANT), BEDROCK_CONVERSATION, "convert.unsupported_weight"),
    (chat({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:x"}}]}, ASSISTANT),
     BEDROCK_CONVERSATION, "convert.unsupported_content"),
    (chat(USER, ASSISTANT, SYSTEM, USER, ASSISTANT), GEMINI, "convert.misplaced_system"),
    (chat(USER, USER, ASSISTANT), BEDROCK_CONVERSATION, "convert.not_alternating"),
    (chat(USER), GEMINI, "convert.no_answer"),
    (chat(SYSTEM, USER, ASSISTANT), PROMPT_COMPLETION, "convert.unsupported_system"),
    (chat(USER, ASSISTANT, USER, ASSISTANT), PROMPT_COMPLETION, "convert.multi_turn"),
    ({"input": {"messages": [USER]}, "preferred_output": [ASSISTANT], "non_preferred_output": [ASSISTANT]},
     GEMINI, "convert.unsupported_method"),
])
def test_refused_examples(example: dict[str, Any], target: str, code: str) -> None:
    with pytest.raises(ValueError) as exc:
        convert_example(example, target)
    assert getattr(exc.value, "code", None) == code


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_file_refusal_names_every_bad_line_and_writes_nothing(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "train.jsonl", [chat(USER, ASSISTANT), chat(USER, {**ASSISTANT, "weight": 0}),
                                                 chat(USER, ASSISTANT), chat(USER)])
    dst = tmp_path / "out.jsonl"
    with pytest.raises(ConversionError) as exc:
        convert_file(src, dst, BEDROCK_CONVERSATION)
    assert [(p.line, p.code) for p in exc.value.problems] == [(2, "convert.unsupported_weight"),
                                                             (4, "convert.no_answer")]
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


def test_cache_is_keyed_by_source_hash_target_and_version(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "train.jsonl", [chat(SYSTEM, USER, ASSISTANT)] * 3)
    sha = sha256_file(src)
    cache = tmp_path / "cache"
    a = convert_cached(src, sha256=sha, target=BEDROCK_CONVERSATION, cache_dir=cache)
    assert a.path.name == f"{sha}.{BEDROCK_CONVERSATION}.v{CONVERTER_VERSION}.jsonl"
    assert a.sha256 == sha256_file(a.path) and a.bytes == a.path.stat().st_size and a.examples == 3
    src.unlink()  # a warm cache needs no source bytes
    b = convert_cached(src, sha256=sha, target=BEDROCK_CONVERSATION, cache_dir=cache)
    assert b == a
    g = tmp_path / "g.jsonl"
    write_jsonl(g, [chat(SYSTEM, USER, ASSISTANT)] * 3)
    c = convert_cached(g, sha256=sha, target=GEMINI, cache_dir=cache)
    assert c.sha256 != a.sha256 and json.loads(c.path.read_text().splitlines()[0])["contents"][1]["role"] == "model"


# --------------------------------------------------------------------------- preference (DPO) for Gemini


def pref(*messages: dict[str, Any], good: Any = "Short.", bad: Any = "A long, rambling answer.",
         **extra: Any) -> dict[str, Any]:
    return {"input": {"messages": list(messages)}, "preferred_output": [{"role": "assistant", "content": good}],
            "non_preferred_output": [{"role": "assistant", "content": bad}], **extra}


def test_gemini_preference_shape() -> None:
    out = convert_example(pref(SYSTEM, USER), GEMINI_PREFERENCE)
    assert out == {"system_instruction": {"parts": [{"text": "You are terse."}]},
                   "contents": [{"role": "user", "parts": [{"text": "Hi?"}]}],
                   "completions": [{"score": 1, "completion": {"role": "model", "parts": [{"text": "Short."}]}},
                                   {"score": 0, "completion": {"role": "model",
                                                               "parts": [{"text": "A long, rambling answer."}]}}]}
    multi = convert_example(pref(USER, ASSISTANT, USER, good=[{"type": "text", "text": "Ok"}]), GEMINI_PREFERENCE)
    assert "system_instruction" not in multi
    assert [c["role"] for c in multi["contents"]] == ["user", "model", "user"]
    assert multi["completions"][0]["completion"]["parts"] == [{"text": "Ok"}]


@pytest.mark.parametrize(("example", "code"), [
    (chat(USER, ASSISTANT), "convert.wrong_method"),
    (pref(USER, ASSISTANT), "convert.no_prompt"),
    (pref(ASSISTANT, USER), "convert.not_alternating"),
    (pref(USER, USER), "convert.not_alternating"),
    (pref(USER, SYSTEM, USER), "convert.misplaced_system"),
    ({**pref(USER), "input": {"messages": [USER], "tools": [{"type": "function", "function": {"name": "f"}}]}},
     "convert.unsupported_tools"),
    ({**pref(USER), "preferred_output": [{"role": "assistant", "content": None,
                                          "tool_calls": [{"id": "c", "type": "function"}]}]},
     "convert.unsupported_tools"),
    ({**pref(USER), "preferred_output": [ASSISTANT, ASSISTANT]}, "convert.bad_example"),
    ({**pref(USER), "non_preferred_output": [USER]}, "convert.bad_role"),
    (pref({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:x"}}]}),
     "convert.unsupported_content"),
    (pref(USER, extra_field=1), "convert.bad_example"),
    ({"input": {}, "preferred_output": [ASSISTANT], "non_preferred_output": [ASSISTANT]}, "convert.bad_example"),
])
def test_gemini_preference_refusals(example: dict[str, Any], code: str) -> None:
    with pytest.raises(ValueError) as exc:
        convert_example(example, GEMINI_PREFERENCE)
    assert getattr(exc.value, "code", None) == code


def test_gemini_preference_file_names_bad_lines_and_caches(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "pref.jsonl", [pref(USER), pref(USER, ASSISTANT), pref(USER), chat(USER, ASSISTANT)])
    with pytest.raises(ConversionError) as exc:
        convert_file(src, tmp_path / "out.jsonl", GEMINI_PREFERENCE)
    assert [(p.line, p.code) for p in exc.value.problems] == [(2, "convert.no_prompt"), (4, "convert.wrong_method")]
    assert not (tmp_path / "out.jsonl").exists()
    good = write_jsonl(tmp_path / "good.jsonl", [pref(SYSTEM, USER)] * 4)
    sha = sha256_file(good)
    a = convert_cached(good, sha256=sha, target=GEMINI_PREFERENCE, cache_dir=tmp_path / "cache")
    assert a.path.name == f"{sha}.{GEMINI_PREFERENCE}.v{CONVERTER_VERSION}.jsonl" and a.examples == 4
    assert json.loads(a.path.read_text().splitlines()[0])["completions"][1]["score"] == 0
    with pytest.raises(ConversionError) as sft:  # the same pairs cannot train supervised Gemini
        convert_cached(good, sha256=sha, target=GEMINI, cache_dir=tmp_path / "cache")
    assert sft.value.problems[0].code == "convert.unsupported_method"
