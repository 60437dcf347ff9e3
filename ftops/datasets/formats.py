"""Per-example validation and token counting for the four fine-tuning file formats.

One `ExampleChecker` walks the examples of one byte range of a file and accumulates issues,
statistics and aggregates in a picklable `RangeResult`, so ranges can be checked in worker
processes and merged in order.

Token counting (exact tiktoken counts, ordinary encoding: "<|endoftext|>" in data is plain text):
- chat: OpenAI cookbook `num_tokens_from_messages`: 3 per message + role + content (+ name + 1),
  + 3 per example to prime the reply; equal to the cookbook for plain string messages.
- content parts: text parts counted; each image part adds a flat 85 tokens (estimate: image
  tokens depend on pixels, which ftops does not decode).
- tool_calls / function_call: 3 + name + arguments per call; `tools` / `functions`: the tokens
  of their JSON (sorted keys). OpenAI's internal rendering of tools is not public, so these
  are close estimates rather than the provider's exact figure.
- weight 0 assistant turns: still counted (they are input context the provider processes and
  bills) but not in `assistant_turns_trained`.
- preference: input messages + preferred + non-preferred output (each + 3).
- prompt_completion: prompt + completion tokens.
"""

from __future__ import annotations

import json
import math
import os
from array import array
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

from ftops.datasets.sensitive import SECRET_CODES, finding_id_in
from ftops.datasets.sensitive import scan_example as scan_sensitive
from ftops.datasets.tokens import TokenCounter
from ftops.diagnostics import did_you_mean

FORMATS = ("chat", "preference", "reinforcement", "prompt_completion", "unknown")
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_PLAIN_ROLES = frozenset({"system", "developer", "user", "assistant"})  # valid with role+content only
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call"})
CHAT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls", "functions"})
PREFERENCE_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})
PREFERENCE_INPUT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls"})
PROMPT_COMPLETION_KEYS = frozenset({"prompt", "completion"})
IMAGE_MIME = frozenset({"image/jpeg", "image/png", "image/webp"})
IMAGE_BAD_EXT = (".gif", ".bmp", ".tif", ".tiff", ".svg", ".heic", ".avif", ".ico")
MAX_IMAGES = 10
MAX_IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_TOKENS = 85  # base cost of one image part; tiktoken cannot count pixels (documented estimate)
MAX_ISSUES_PER_CODE = 50
MESSAGE_OVERHEAD = 3
REPLY_OVERHEAD = 3
NAME_OVERHEAD = 1
TOOL_CALL_OVERHEAD = 3


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # `1e999` is valid JSON but overflows to inf
        raise ValueError(f"number {text[:20]} is out of range")
    return value


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def _decode(text: str) -> Any:
    """json.loads without NaN/Infinity/overflowing numbers; a line nested too deeply for the
    decoder's recursion is a ValueError like any other invalid line, not a crash."""
    try:
        return _decoder.decode(text)
    except RecursionError:
        raise ValueError("nested too deeply (more than ~1,000 levels of arrays or objects)") from None


def detect_format(obj: dict[str, Any], method: str) -> str:
    """Format of one example, from its top-level keys (the file's format is its first example's)."""
    if "input" in obj or "preferred_output" in obj or "non_preferred_output" in obj:
        return "preference"
    if "messages" in obj:
        return "reinforcement" if method == "reinforcement" else "chat"
    if "prompt" in obj or "completion" in obj:
        return "prompt_completion"
    return "unknown"


def example_hash(raw: bytes) -> int:
    """Stable signed 64-bit hash of one example line (whitespace-trimmed), across processes and runs."""
    return int.from_bytes(blake2b(raw.strip(), digest_size=8).digest(), "little", signed=True)


@dataclass
class Aggregate:
    """A file-level warning collected over many lines: how many, and the first line."""

    count: int = 0
    first_line: int = 0


@dataclass
class RangeResult:
    """What checking one byte range produced; line numbers are relative to the range start."""

    lines: int = 0  # number of b"\n" in the range
    examples: int = 0
    counted: int = 0  # examples whose tokens were counted (those without errors)
    tokens_total: int = 0
    tokens_min: int = 0
    tokens_max: int = 0
    over_limit: int = 0
    trained_tokens: int = 0
    assistant_turns_trained: int = 0
    approximate: bool = False
    errors: list[tuple[int | None, str, str, str]] = field(default_factory=list)
    warnings: list[tuple[int | None, str, str, str]] = field(default_factory=list)
    issue_counts: dict[str, int] = field(default_factory=dict)
    aggregates: dict[str, Aggregate] = field(default_factory=dict)
    hashes: bytes = b""  # array('q') of example hashes
    hash_lines: bytes = b""  # array('I') of their relative line numbers
    prompt_suffix: str | None = None  # common suffix of all prompts (prompt_completion)
    completion_suffix: str | None = None


def _common_suffix(a: str | None, b: str) -> str:
    if a is None:
        return b
    n = 0
    la, lb = len(a), len(b)
    while n < la and n < lb and a[la - 1 - n] == b[lb - 1 - n]:
        n += 1
    return a[la - n:] if n else ""


class ExampleChecker:
    """Checks examples of one format for one method, counting tokens as it goes."""

    def __init__(self, fmt: str, method: str, encoding: str, token_limit: int,
                 *, legacy_model: bool | None = None, fast_hash: bool = True) -> None:
        self.fmt = fmt
        self.method = method
        self.limit = token_limit
        self.counter = TokenCounter(encoding)
        self.legacy_model = legacy_model
        # hash() is seeded per interpreter: fine when every range is hashed by processes that
        # share one seed (this process, or workers forked from one forkserver); else blake2b.
        self.fast_hash = fast_hash
        self.r = RangeResult(approximate=self.counter.approximate)
        self._hashes = array("q")
        self._hash_lines = array("I")  # line numbers; 4 bytes each
        self._line_errors = 0

    # ----- issue collection -------------------------------------------------------------
    def _issue(self, bucket: list[tuple[int | None, str, str, str]], line: int | None, code: str,
               message: str, hint: str = "") -> None:
        n = self.r.issue_counts.get(code, 0) + 1
        self.r.issue_counts[code] = n
        if n <= MAX_ISSUES_PER_CODE:
            bucket.append((line, code, message, hint))

    def err(self, line: int | None, code: str, message: str, hint: str = "") -> None:
        self._line_errors += 1
        self._issue(self.r.errors, line, code, message, hint)

    def warn(self, line: int | None, code: str, message: str, hint: str = "") -> None:
        self._issue(self.r.warnings, line, code, message, hint)

    def aggregate(self, key: str, line: int) -> None:
        a = self.r.aggregates.get(key)
        if a is None:
            self.r.aggregates[key] = Aggregate(1, line)
        else:
            a.count += 1

    # ----- lines --------------------------------------------------------------------------
    def check_line(self, raw: bytes, line: int) -> None:
        """Check one line (without its b"\\n"); `line` is its 1-based number in this range."""
        if not raw or raw.isspace():
            self.err(line, "blank_line", "blank line", "remove empty lines; every line must be one JSON object")
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.err(line, "invalid_utf8", f"invalid UTF-8 at byte {exc.start}", "save the file as UTF-8")
            return
        try:
            obj = _decode(text)
        except ValueError as exc:
            msg = str(exc)
            self.err(line, "invalid_json", f"not valid JSON: {msg}",
                     "each line must be one complete JSON object (no NaN/Infinity, no line breaks inside)")
            return
        if type(obj) is not dict:
            self.err(line, "not_an_object", f"line is a JSON {type(obj).__name__.replace('dict', 'object')}, "
                     "not an object", "each line must be one JSON object")
            return
        self.r.examples += 1
        self._hashes.append(hash(raw) if self.fast_hash else example_hash(raw))
        self._hash_lines.append(line)
        fmt = detect_format(obj, self.method)
        if fmt != self.fmt:
            self.err(line, "format_mismatch", f"example is in {fmt} format but the file is {self.fmt} "
                     "(detected from its first example)", "use one format per file")
            return
        self._line_errors = 0
        try:
            if fmt == "chat":
                tokens = self._chat(obj, line)
            elif fmt == "preference":
                tokens = self._preference(obj, line)
            elif fmt == "reinforcement":
                tokens = self._reinforcement(obj, line)
            elif fmt == "prompt_completion":
                tokens = self._prompt_completion(obj, line)
            else:
                return
        except RecursionError:  # e.g. `tools` nested just below the decoder's limit, re-encoded to count
            self.err(line, "too_deep", "example is nested too deeply to check",
                     "flatten the example; real examples are a few levels deep")
            return
        for code, what in scan_sensitive(obj, text, raw):
            if code in SECRET_CODES:
                # An error, but not one of the example's: its tokens still count (it may be accepted).
                self._issue(self.r.errors, line, code, f"secret in training data: {what}",
                            "remove it and revoke it; if it is a deliberate fake, accept it in ftops.yaml with "
                            f"`allow_secrets: ['{finding_id_in(what)}']`")
            else:
                self.warn(line, code, f"possible sensitive data: {what}",
                          "remove personal data and secrets from training data")
        if self._line_errors == 0 and tokens is not None:
            r = self.r
            if r.counted == 0 or tokens < r.tokens_min:
                r.tokens_min = tokens
            r.tokens_max = max(r.tokens_max, tokens)
            r.counted += 1
            r.tokens_total += tokens
            if tokens > self.limit:
                r.over_limit += 1
                r.trained_tokens += self.limit
                self.warn(line, "truncated", f"example has {tokens} tokens, over the model's limit of "
                          f"{self.limit}; it will be truncated", "shorten or split the example")
            else:
                r.trained_tokens += tokens

    def finish(self) -> RangeResult:
        self.r.hashes = self._hashes.tobytes()
        self.r.hash_lines = self._hash_lines.tobytes()
        return self.r

    # ----- formats ------------------------------------------------------------------------
    def _extra_keys(self, obj: dict[str, Any], allowed: frozenset[str], line: int) -> None:
        for k in obj.keys() - allowed:
            self.aggregate(f"extra_key:{k}", line)

    def _message_array(self, obj: dict[str, Any], line: int) -> list[Any] | None:
        """`messages` as a non-empty array, or None with the error recorded."""
        msgs = obj.get("messages")
        if type(msgs) is not list:
            self.err(line, "wrong_type", "`messages` must be an array of message objects")
            return None
        if not msgs:
            self.err(line, "missing_key", "`messages` is empty")
            return None
        return msgs

    def _chat(self, obj: dict[str, Any], line: int) -> int | None:
        if not obj.keys() <= CHAT_KEYS:
            self._extra_keys(obj, CHAT_KEYS, line)
        tokens = self._tools(obj, line)
        msgs = self._message_array(obj, line)
        if msgs is None:
            return None
        n, trained, has_system = self._messages(msgs, line, "messages")
        if self.method == "supervised" and trained == 0 and self._line_errors == 0:
            self.err(line, "no_assistant_message", "no assistant message to learn from "
                     "(none present, or all have weight 0)", "add an assistant reply with weight 1")
        if not has_system:
            self.aggregate("missing_system_message", line)
        self.r.assistant_turns_trained += trained
        return tokens + n + REPLY_OVERHEAD

    def _reinforcement(self, obj: dict[str, Any], line: int) -> int | None:
        tokens = self._tools(obj, line)
        msgs = self._message_array(obj, line)
        if msgs is None:
            return None
        n, _trained, _sys = self._messages(msgs, line, "messages")
        return tokens + n + REPLY_OVERHEAD

    def _preference(self, obj: dict[str, Any], line: int) -> int | None:
        if not obj.keys() <= PREFERENCE_KEYS:
            self._extra_keys(obj, PREFERENCE_KEYS, line)
        inp = obj.get("input")
        tokens = 0
        if inp is None:
            self.err(line, "missing_key", "missing key `input`")
        elif type(inp) is not dict:
            self.err(line, "wrong_type", "`input` must be an object with `messages`")
        else:
            for k in inp.keys() - PREFERENCE_INPUT_KEYS:
                self.err(line, "unknown_key", f"unknown key `input.{k}`",
                         did_you_mean(k, PREFERENCE_INPUT_KEYS))
            tokens += self._tools(inp, line)
            msgs = inp.get("messages")
            if type(msgs) is not list or not msgs:
                self.err(line, "missing_key" if not msgs else "wrong_type",
                         "`input.messages` must be a non-empty array of messages")
            else:
                n, _t, has_system = self._messages(msgs, line, "input.messages")
                tokens += n
                if not has_system:
                    self.aggregate("missing_system_message", line)
        for key in ("preferred_output", "non_preferred_output"):
            out = obj.get(key)
            if out is None:
                self.err(line, "missing_key", f"missing key `{key}`")
                continue
            if type(out) is not list or len(out) != 1:
                self.err(line, "wrong_type", f"`{key}` must be an array with exactly one assistant message")
                continue
            m = out[0]
            if type(m) is not dict or m.get("role") != "assistant":
                self.err(line, "wrong_type", f"`{key}` must hold one message with role assistant")
                continue
            n, _t, _s = self._messages(out, line, key)
            tokens += n + REPLY_OVERHEAD
        if self._line_errors == 0:
            self.r.assistant_turns_trained += 1
        return tokens

    def _prompt_completion(self, obj: dict[str, Any], line: int) -> int | None:
        if not obj.keys() <= PROMPT_COMPLETION_KEYS:
            self._extra_keys(obj, PROMPT_COMPLETION_KEYS, line)
        prompt = obj.get("prompt")
        completion = obj.get("completion")
        tokens = 0
        if prompt is None:
            self.err(line, "missing_key", "missing key `prompt`")
        elif type(prompt) is not str:
            self.err(line, "wrong_type", "`prompt` must be a string")
        else:
            tokens += self.counter.count(prompt)
            self.r.prompt_suffix = _common_suffix(self.r.prompt_suffix, prompt)
        if completion is None:
            self.err(line, "missing_key", "missing key `completion`")
        elif type(completion) is not str:
            self.err(line, "wrong_type", "`completion` must be a string")
        elif not completion:
            self.err(line, "empty_content", "`completion` is empty")
        else:
            tokens += self.counter.count(completion)
            self.r.completion_suffix = _common_suffix(self.r.completion_suffix, completion)
            if not completion[0].isspace():
                self.aggregate("completion_leading_space", line)
        if self._line_errors == 0:
            self.r.assistant_turns_trained += 1
        return tokens

    # ----- pieces ---------------------------------------------------------------------------
    def _tools(self, obj: dict[str, Any], line: int) -> int:
        tokens = 0
        tools = obj.get("tools")
        if tools is not None:
            if type(tools) is not list:
                self.err(line, "wrong_type", "`tools` must be an array")
            else:
                for i, t in enumerate(tools):
                    fn = t.get("function") if type(t) is dict else None
                    if type(t) is not dict or t.get("type", "function") != "function" or type(fn) is not dict:
                        self.err(line, "wrong_type", f"`tools[{i}]` must be {{\"type\": \"function\", "
                                 "\"function\": {...}}")
                    elif type(fn.get("name")) is not str or not fn.get("name"):
                        self.err(line, "missing_key", f"`tools[{i}].function.name` is missing")
                if self._line_errors == 0:
                    tokens += self.counter.count_cached(json.dumps(tools, ensure_ascii=False, sort_keys=True))
        ptc = obj.get("parallel_tool_calls")
        if ptc is not None and type(ptc) is not bool:
            self.err(line, "wrong_type", "`parallel_tool_calls` must be true or false")
        functions = obj.get("functions")
        if functions is not None:
            if type(functions) is not list or not all(
                    type(f) is dict and type(f.get("name")) is str for f in functions):
                self.err(line, "wrong_type", "`functions` must be an array of objects with a `name`")
            else:
                tokens += self.counter.count_cached(json.dumps(functions, ensure_ascii=False, sort_keys=True))
        return tokens

    def _messages(self, msgs: list[Any], line: int, where: str) -> tuple[int, int, bool]:
        """Validate messages; return (tokens, assistant turns trained, has a system/developer message)."""
        count = self.counter.count
        count_cached = self.counter.count_cached
        tokens = 0
        trained = 0
        has_system = False
        images = 0
        i = -1
        for m in msgs:
            i += 1
            if type(m) is not dict:
                self.err(line, "wrong_type", f"`{where}[{i}]` must be an object")
                continue
            role = m.get("role")
            content = m.get("content")
            # Fast path: the common {"role": ..., "content": "..."} message.
            if len(m) == 2 and type(content) is str and content and role in _PLAIN_ROLES:
                if role == "assistant":
                    trained += 1
                    tokens += MESSAGE_OVERHEAD + count_cached(role) + count(content)
                elif role == "system" or role == "developer":
                    has_system = True
                    tokens += MESSAGE_OVERHEAD + count_cached(role) + count_cached(content)
                else:
                    tokens += MESSAGE_OVERHEAD + count_cached(role) + count(content)
                continue
            if not m.keys() <= MESSAGE_KEYS:
                for k in sorted(m.keys() - MESSAGE_KEYS):
                    self.err(line, "unknown_message_key", f"unknown key `{k}` in `{where}[{i}]`",
                             did_you_mean(k, MESSAGE_KEYS))
            if role is None:
                self.err(line, "missing_key", f"`{where}[{i}]` has no `role`")
                continue
            if type(role) is not str or role not in ROLES:
                self.err(line, "unknown_role", f"unknown role {json.dumps(role)} in `{where}[{i}]`",
                         did_you_mean(str(role), ROLES) or "roles: " + ", ".join(sorted(ROLES)))
                continue
            tokens += MESSAGE_OVERHEAD + count_cached(role)
            if type(content) is str:
                if not content and not (role == "assistant" and ("tool_calls" in m or "function_call" in m)):
                    self.err(line, "empty_content", f"`{where}[{i}]` ({role}) has empty content")
                elif role == "system" or role == "developer":
                    tokens += count_cached(content)
                else:
                    tokens += count(content)
            elif type(content) is list:
                t, n_img = self._parts(content, role, line, f"{where}[{i}]")
                tokens += t
                images += n_img
            elif content is None:
                if not (role == "assistant" and (m.get("tool_calls") or m.get("function_call"))):
                    self.err(line, "missing_content", f"`{where}[{i}]` ({role}) has no content")
            else:
                self.err(line, "wrong_type", f"`{where}[{i}].content` must be a string or an array of parts")
            if role == "system" or role == "developer":
                has_system = True
            name = m.get("name")
            if name is not None:
                if type(name) is not str:
                    self.err(line, "wrong_type", f"`{where}[{i}].name` must be a string")
                else:
                    tokens += count_cached(name) + NAME_OVERHEAD
            weight = m.get("weight")
            if "weight" in m:
                if role != "assistant":
                    self.err(line, "invalid_weight", f"`weight` is only allowed on assistant messages "
                             f"(`{where}[{i}]` is {role})")
                elif type(weight) is not int or weight not in (0, 1):
                    self.err(line, "invalid_weight", f"`weight` must be 0 or 1, got {json.dumps(weight)}")
            if role == "assistant" and weight != 0:
                trained += 1
            if "tool_calls" in m:
                tokens += self._tool_calls(m["tool_calls"], role, line, f"{where}[{i}]")
            if "function_call" in m:
                tokens += self._function_call(m["function_call"], role, line, f"{where}[{i}]")
            if role == "tool":
                tcid = m.get("tool_call_id")
                if type(tcid) is not str or not tcid:
                    self.err(line, "missing_key", f"`{where}[{i}]` (tool) needs a string `tool_call_id`")
            elif "tool_call_id" in m:
                self.err(line, "unknown_message_key", f"`tool_call_id` is only allowed on tool messages "
                         f"(`{where}[{i}]` is {role})")
            if role == "function" and type(name) is not str:
                self.err(line, "missing_key", f"`{where}[{i}]` (function) needs a `name`")
        if images > MAX_IMAGES:
            self.err(line, "too_many_images", f"{images} images in one example; at most {MAX_IMAGES} allowed")
        return tokens, trained, has_system

    def _parts(self, parts: list[Any], role: str, line: int, where: str) -> tuple[int, int]:
        tokens = 0
        images = 0
        if not parts:
            self.err(line, "empty_content", f"`{where}` ({role}) has an empty content array")
        for j, p in enumerate(parts):
            ptype = p.get("type") if type(p) is dict else None
            if ptype == "text":
                text = p.get("text")
                if type(text) is not str:
                    self.err(line, "wrong_type", f"`{where}.content[{j}].text` must be a string")
                elif not text:
                    self.err(line, "empty_content", f"`{where}.content[{j}]` has empty text")
                else:
                    tokens += self.counter.count(text)
            elif ptype == "image_url":
                images += 1
                tokens += IMAGE_TOKENS
                if role != "user":
                    self.err(line, "image_not_in_user_message",
                             f"`{where}.content[{j}]` is an image in a {role} message; images are allowed "
                             "in user messages only")
                img = p.get("image_url")
                url = img.get("url") if type(img) is dict else None
                if type(url) is not str or not url:
                    self.err(line, "missing_key", f"`{where}.content[{j}].image_url.url` is missing")
                else:
                    self._image_url(url, line, f"{where}.content[{j}]")
            else:
                self.err(line, "wrong_type", f"`{where}.content[{j}]` must be a part of type text or image_url")
        return tokens, images

    def _image_url(self, url: str, line: int, where: str) -> None:
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            mime = header[5:].split(";", 1)[0].lower()
            if mime not in IMAGE_MIME:
                self.err(line, "image_format", f"`{where}` is {mime or 'of unknown type'}; "
                         "only jpeg, png and webp images are supported")
            size = len(payload) * 3 // 4 if ";base64" in header else len(payload)
            if size > MAX_IMAGE_BYTES:
                self.err(line, "image_too_large", f"`{where}` is {size / 1e6:.1f} MB; data URLs may "
                         "hold at most 10 MB")
        else:
            path = url.split("?", 1)[0].split("#", 1)[0].lower()
            if path.endswith(IMAGE_BAD_EXT):
                self.err(line, "image_format", f"`{where}` ({os.path.basename(path)}) is not jpeg, png or webp")

    def _tool_calls(self, calls: Any, role: str, line: int, where: str) -> int:
        if role != "assistant":
            self.err(line, "unknown_message_key", f"`tool_calls` is only allowed on assistant messages "
                     f"(`{where}` is {role})")
            return 0
        if type(calls) is not list or not calls:
            self.err(line, "wrong_type", f"`{where}.tool_calls` must be a non-empty array")
            return 0
        tokens = 0
        for k, c in enumerate(calls):
            fn = c.get("function") if type(c) is dict else None
            if type(c) is not dict or type(fn) is not dict:
                self.err(line, "wrong_type", f"`{where}.tool_calls[{k}]` must be {{\"id\", \"type\": "
                         "\"function\", \"function\": {\"name\", \"arguments\"}}")
                continue
            if type(c.get("id")) is not str:
                self.err(line, "missing_key", f"`{where}.tool_calls[{k}].id` must be a string")
            if c.get("type", "function") != "function":
                self.err(line, "wrong_type", f"`{where}.tool_calls[{k}].type` must be \"function\"")
            tokens += TOOL_CALL_OVERHEAD + self._function(fn, line, f"{where}.tool_calls[{k}].function")
        return tokens

    def _function_call(self, fc: Any, role: str, line: int, where: str) -> int:
        if role != "assistant":
            self.err(line, "unknown_message_key", f"`function_call` is only allowed on assistant messages "
                     f"(`{where}` is {role})")
            return 0
        if type(fc) is not dict:
            self.err(line, "wrong_type", f"`{where}.function_call` must be an object")
            return 0
        return TOOL_CALL_OVERHEAD + self._function(fc, line, f"{where}.function_call")

    def _function(self, fn: dict[str, Any], line: int, where: str) -> int:
        tokens = 0
        name = fn.get("name")
        if type(name) is not str or not name:
            self.err(line, "missing_key", f"`{where}.name` must be a non-empty string")
        else:
            tokens += self.counter.count_cached(name)
        args = fn.get("arguments")
        if type(args) is not str:
            self.err(line, "invalid_tool_arguments", f"`{where}.arguments` must be a JSON string, got "
                     f"{type(args).__name__.replace('dict', 'an object')}",
                     "encode the arguments object with json.dumps")
        else:
            try:
                json.loads(args)
            except ValueError:
                self.err(line, "invalid_tool_arguments", f"`{where}.arguments` is not valid JSON")
            tokens += self.counter.count(args)
        return tokens
