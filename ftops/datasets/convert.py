"""Conversion of OpenAI-format JSONL into the formats other providers train on.

Vertex AI (Gemini) and Amazon Bedrock read training data from object storage in their own shapes,
so ftops converts the chat (or prompt/completion) JSONL a project already has. The converted bytes
are what is hashed, uploaded and fingerprinted; the source keeps its own hash for the stat cache.

Targets (one function each, `convert_example`):

- `gemini-contents` -- Vertex AI supervised tuning for Gemini:
  `{"systemInstruction": {"role": "system", "parts": [{"text": …}]},
    "contents": [{"role": "user"|"model", "parts": [{"text": …}]}, …]}`
- `gemini-preference` -- Vertex AI preference tuning (DPO) for Gemini, from OpenAI's
  `{"input": {"messages": …}, "preferred_output": […], "non_preferred_output": […]}`:
  `{"system_instruction": {"parts": [{"text": …}]}, "contents": [… ending with a user turn],
    "completions": [{"score": 1, "completion": {"role": "model", "parts": [{"text": …}]}},
                    {"score": 0, "completion": {…}}]}`
- `bedrock-conversation-2024` -- Bedrock fine-tuning of Amazon Nova:
  `{"schemaVersion": "bedrock-conversation-2024", "system": [{"text": …}],
    "messages": [{"role": "user"|"assistant", "content": [{"text": …}]}, …]}`
- `prompt-completion` -- Bedrock models that take `{"prompt": …, "completion": …}` (Titan, Llama…).

What has no equivalent is refused with the file's line number, never dropped: tool calls and tool
messages, images and audio, `weight: 0` (no target can leave a turn out of the loss), preference
pairs for a supervised target (and chat examples for a preference target), a system message after
the first turn, turns that do not alternate user/assistant, a conversation that does not end with
the assistant (a preference prompt: with the user), and a preference output that is not exactly
one assistant message.

Conversion streams line by line; results are cached under `cache_dir/converted/` keyed by
(source sha256, target, CONVERTER_VERSION), so a warm plan converts nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CONVERTER_VERSION",
    "TARGETS",
    "ConversionError",
    "ConversionProblem",
    "ConvertedFile",
    "convert_cached",
    "convert_example",
    "convert_file",
]

CONVERTER_VERSION = "1"
MAX_PROBLEMS = 20

GEMINI = "gemini-contents"
GEMINI_PREFERENCE = "gemini-preference"
BEDROCK_CONVERSATION = "bedrock-conversation-2024"
PROMPT_COMPLETION = "prompt-completion"


@dataclass(frozen=True)
class ConversionProblem:
    """One example that cannot be converted: its line (1-based), a stable code and what is wrong."""

    line: int
    code: str
    message: str
    hint: str = ""


class ConversionError(Exception):
    """The source has examples the target cannot express; `problems` are capped at MAX_PROBLEMS."""

    def __init__(self, target: str, problems: list[ConversionProblem], more: bool = False) -> None:
        super().__init__(f"{len(problems)}{'+' if more else ''} example(s) cannot be converted to {target}")
        self.target = target
        self.problems = problems
        self.more = more


class _Refuse(ValueError):
    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class ConvertedFile:
    """A converted dataset in the cache: what is uploaded, hashed and fingerprinted."""

    path: Path
    sha256: str
    bytes: int
    target: str
    source_sha256: str
    examples: int


# --------------------------------------------------------------------------- reading the source


def _text(content: Any, where: str) -> str:
    """The text of an OpenAI message content (a string, or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out: list[str] = []
        for part in content:
            if not isinstance(part, dict):
                raise _Refuse("convert.bad_content", f"{where}: a content part is not an object")
            kind = part.get("type", "text")
            if kind != "text":
                raise _Refuse("convert.unsupported_content",
                              f"{where}: content of type `{kind}` (images, audio, files) cannot be converted",
                              "keep text-only examples for this provider")
            if not isinstance(part.get("text"), str):
                raise _Refuse("convert.bad_content", f"{where}: a text part has no `text` string")
            out.append(part["text"])
        return "".join(out)
    if content is None:
        raise _Refuse("convert.bad_content", f"{where}: no content")
    raise _Refuse("convert.bad_content", f"{where}: content must be a string or a list of text parts")


def _turns(example: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]]:
    """(system text, [(role user|assistant, text), …]) of a chat or prompt/completion example."""
    if "input" in example and ("preferred_output" in example or "non_preferred_output" in example):
        raise _Refuse("convert.unsupported_method", "a preference (DPO) pair cannot be converted to this format",
                      "preference pairs train with `method: dpo` where the provider offers it; for "
                      "`method: supervised` use chat examples")
    if isinstance(example.get("prompt"), str) and isinstance(example.get("completion"), str) \
            and "messages" not in example:
        return None, [("user", example["prompt"]), ("assistant", example["completion"])]
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Refuse("convert.bad_example", "the example has no `messages` list (nor prompt/completion)")
    if example.get("tools") or example.get("functions"):
        raise _Refuse("convert.unsupported_tools", "tool definitions (`tools`) cannot be converted to this format",
                      "remove tool-calling examples from data for this provider")
    system, turns = _conversation(messages, "messages")
    if not turns or turns[-1][0] != "assistant":
        raise _Refuse("convert.no_answer", "the conversation must end with an assistant message")
    return system, turns


def _conversation(messages: list[Any], at: str) -> tuple[str | None, list[tuple[str, str]]]:
    """(system text, alternating [(role, text), …] starting with the user) of a message list; `at`
    names the list in messages ("messages", "input.messages")."""
    system: str | None = None
    turns: list[tuple[str, str]] = []
    for i, m in enumerate(messages):
        where = f"{at}[{i}]"
        if not isinstance(m, dict):
            raise _Refuse("convert.bad_example", f"{where} is not an object")
        role = m.get("role")
        if m.get("tool_calls") or m.get("function_call") or role in ("tool", "function"):
            raise _Refuse("convert.unsupported_tools",
                          f"{where}: tool calls and tool results cannot be converted to this format",
                          "remove tool-calling examples from data for this provider")
        if "weight" in m and m["weight"] != 1:
            raise _Refuse("convert.unsupported_weight",
                          f"{where}: `weight: {m['weight']}` has no equivalent (every assistant turn is trained)",
                          "remove the turn, or drop `weight`")
        if role in ("system", "developer"):
            if turns or system is not None:
                raise _Refuse("convert.misplaced_system",
                              f"{where}: a {role} message is only accepted as the first message",
                              "merge it into the first system message")
            system = _text(m.get("content"), where)
            continue
        if role not in ("user", "assistant"):
            raise _Refuse("convert.bad_role", f"{where}: role {role!r} cannot be converted")
        text = _text(m.get("content"), where)
        if turns and turns[-1][0] == role:
            raise _Refuse("convert.not_alternating",
                          f"{where}: two {role} messages in a row (turns must alternate user/assistant)",
                          "merge consecutive messages of one role")
        if not turns and role != "user":
            raise _Refuse("convert.not_alternating", f"{where}: the conversation must start with a user message")
        turns.append((role, text))
    return system, turns


def _preference(example: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]], str, str]:
    """(system, prompt turns ending with the user's, preferred text, non-preferred text) of an
    OpenAI preference example."""
    if "messages" in example or "prompt" in example:
        raise _Refuse("convert.wrong_method", "a chat (or prompt/completion) example cannot train preference tuning",
                      "`method: dpo` lines are {\"input\": {\"messages\": […]}, \"preferred_output\": […], "
                      "\"non_preferred_output\": […]}")
    inp = example.get("input")
    if not isinstance(inp, dict) or not isinstance(inp.get("messages"), list) or not inp["messages"]:
        raise _Refuse("convert.bad_example", "the example has no `input.messages` list")
    if inp.get("tools") or inp.get("functions"):
        raise _Refuse("convert.unsupported_tools",
                      "tool definitions (`input.tools`) cannot be converted to this format",
                      "remove tool-calling examples from data for this provider")
    unknown = sorted(set(example) - {"input", "preferred_output", "non_preferred_output"})
    if unknown:
        raise _Refuse("convert.bad_example", f"unknown field(s) {', '.join(unknown)} have no equivalent",
                      "remove them")
    system, turns = _conversation(inp["messages"], "input.messages")
    if not turns or turns[-1][0] != "user":
        raise _Refuse("convert.no_prompt", "`input.messages` must end with a user message (the prompt both "
                                           "outputs answer)", "move the last assistant turn into the outputs")
    outputs: list[str] = []
    for key in ("preferred_output", "non_preferred_output"):
        out = example.get(key)
        if not isinstance(out, list) or len(out) != 1 or not isinstance(out[0], dict):
            raise _Refuse("convert.bad_example", f"`{key}` must be a list with exactly one assistant message")
        m = out[0]
        if m.get("tool_calls") or m.get("function_call"):
            raise _Refuse("convert.unsupported_tools", f"{key}[0]: tool calls cannot be converted to this format",
                          "remove tool-calling examples from data for this provider")
        if m.get("role") != "assistant":
            raise _Refuse("convert.bad_role", f"{key}[0]: the role must be `assistant`, not {m.get('role')!r}")
        outputs.append(_text(m.get("content"), f"{key}[0]"))
    return system, turns, outputs[0], outputs[1]


# --------------------------------------------------------------------------- one function per target


def to_gemini(example: dict[str, Any]) -> dict[str, Any]:
    system, turns = _turns(example)
    out: dict[str, Any] = {}
    if system is not None:
        out["systemInstruction"] = {"role": "system", "parts": [{"text": system}]}
    out["contents"] = [{"role": "model" if r == "assistant" else "user", "parts": [{"text": t}]} for r, t in turns]
    return out


def to_gemini_preference(example: dict[str, Any]) -> dict[str, Any]:
    system, turns, preferred, rejected = _preference(example)
    out: dict[str, Any] = {}
    if system is not None:
        out["system_instruction"] = {"parts": [{"text": system}]}
    out["contents"] = [{"role": "model" if r == "assistant" else "user", "parts": [{"text": t}]} for r, t in turns]
    out["completions"] = [{"score": 1, "completion": {"role": "model", "parts": [{"text": preferred}]}},
                          {"score": 0, "completion": {"role": "model", "parts": [{"text": rejected}]}}]
    return out


def to_bedrock_conversation(example: dict[str, Any]) -> dict[str, Any]:
    system, turns = _turns(example)
    out: dict[str, Any] = {"schemaVersion": BEDROCK_CONVERSATION}
    if system is not None:
        out["system"] = [{"text": system}]
    out["messages"] = [{"role": r, "content": [{"text": t}]} for r, t in turns]
    return out


def to_prompt_completion(example: dict[str, Any]) -> dict[str, Any]:
    system, turns = _turns(example)
    if system is not None:
        raise _Refuse("convert.unsupported_system", "a system message has no place in prompt/completion",
                      "fold the instruction into the user message")
    if len(turns) != 2:
        raise _Refuse("convert.multi_turn", f"{len(turns)} turns: prompt/completion takes one user and one "
                                            "assistant message", "split the conversation into single turns")
    return {"prompt": turns[0][1], "completion": turns[1][1]}


TARGETS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    GEMINI: to_gemini,
    GEMINI_PREFERENCE: to_gemini_preference,
    BEDROCK_CONVERSATION: to_bedrock_conversation,
    PROMPT_COMPLETION: to_prompt_completion,
}


def convert_example(example: Any, target: str) -> dict[str, Any]:
    """One example in `target`'s shape; raises ValueError (with `.code`) when it has no equivalent."""
    if not isinstance(example, dict):
        raise _Refuse("convert.bad_example", "the line is not a JSON object")
    return TARGETS[target](example)


# --------------------------------------------------------------------------- files


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            yield n, raw


def convert_file(src: Path, dst: Path, target: str) -> tuple[str, int, int]:
    """Stream `src` into `dst` in `target`'s format; returns (sha256, bytes, examples) of `dst`.

    Every problem (up to MAX_PROBLEMS) is collected before raising ConversionError; `dst` is then
    not written."""
    if target not in TARGETS:
        raise KeyError(f"unknown conversion target {target!r}")
    problems: list[ConversionProblem] = []
    more = False
    sha, size, examples = hashlib.sha256(), 0, 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            for n, raw in _lines(src):
                if not raw.strip():
                    continue
                try:
                    example = json.loads(raw)
                    converted = convert_example(example, target)
                except _Refuse as r:
                    if len(problems) >= MAX_PROBLEMS:
                        more = True
                        break
                    problems.append(ConversionProblem(n, r.code, r.message, r.hint))
                    continue
                except (ValueError, UnicodeDecodeError):
                    if len(problems) >= MAX_PROBLEMS:
                        more = True
                        break
                    problems.append(ConversionProblem(n, "convert.bad_json", "the line is not valid JSON"))
                    continue
                if problems:
                    continue
                data = (json.dumps(converted, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
                out.write(data)
                sha.update(data)
                size += len(data)
                examples += 1
            out.flush()
            os.fsync(out.fileno())
        if problems:
            raise ConversionError(target, problems, more)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha.hexdigest(), size, examples


def convert_cached(src: Path, *, sha256: str, target: str, cache_dir: Path) -> ConvertedFile:
    """`src` (whose bytes hash to `sha256`) converted to `target`, from the cache when it is there."""
    base = Path(cache_dir) / "converted" / f"{sha256}.{target}.v{CONVERTER_VERSION}"
    data, meta = base.with_suffix(base.suffix + ".jsonl"), base.with_suffix(base.suffix + ".json")
    try:
        m = json.loads(meta.read_text())
        if data.stat().st_size == m["bytes"]:
            return ConvertedFile(path=data, sha256=m["sha256"], bytes=m["bytes"], target=target,
                                 source_sha256=sha256, examples=m["examples"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    sha, size, examples = convert_file(Path(src), data, target)
    tmp = meta.with_suffix(f".json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"sha256": sha, "bytes": size, "examples": examples, "source_sha256": sha256}))
    os.replace(tmp, meta)
    return ConvertedFile(path=data, sha256=sha, bytes=size, target=target, source_sha256=sha256, examples=examples)
