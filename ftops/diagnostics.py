"""Diagnostics: what ftops tells a person about a problem, with where it is and how to fix it.

Every layer reports problems as `Diagnostic` values collected in a list, so a run shows them
all at once instead of stopping at the first. `FtopsError` carries diagnostics up to the CLI,
whose one error handler prints them and exits 1. This module imports nothing from ftops.

Codes are stable dotted slugs (`config.unknown_field`, `dataset.blank_line`,
`provider.auth_failed`): tests and JSON consumers match codes, never prose.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class SourceRange:
    """A place in a source file; line and column are 1-based."""

    filename: str
    line: int
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.column}"

    def to_json(self) -> dict[str, object]:
        return {"filename": self.filename, "line": self.line, "column": self.column}


@dataclass(frozen=True)
class Diagnostic:
    """One problem: severity, stable code, short summary, detail, where, and a concrete fix."""

    severity: Severity
    code: str
    summary: str
    detail: str = ""
    range: SourceRange | None = None
    hint: str = ""
    address: str = ""  # e.g. "models.support-bot"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "summary": self.summary,
            "detail": self.detail,
            "range": self.range.to_json() if self.range else None,
            "hint": self.hint,
            "address": self.address,
        }


def error(code: str, summary: str, detail: str = "", *, range: SourceRange | None = None,
          hint: str = "", address: str = "") -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, summary, detail, range, hint, address)


def warning(code: str, summary: str, detail: str = "", *, range: SourceRange | None = None,
            hint: str = "", address: str = "") -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, summary, detail, range, hint, address)


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diags)


class FtopsError(Exception):
    """The one exception the CLI turns into printed diagnostics and exit code 1.

    Raise it with every diagnostic found so far; never for a bug (those keep their traceback
    under --debug).
    """

    exit_code = 1

    def __init__(self, diagnostics: Diagnostic | Sequence[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        first = self.diagnostics[0] if self.diagnostics else None
        super().__init__(f"[{first.code}] {first.summary}" if first else "ftops error")


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A 'did you mean `x`?' hint, or '' when nothing is close (terraform internal/didyoumean)."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{matches[0]}`?" if matches else ""


MAX_SOURCE_LINE = 160

# Characters that would let a value forge output lines or restyle a terminal: C0/C1 controls except
# tab (newline, CR, ESC starting an ANSI sequence...), DEL, Unicode line/paragraph separators and
# the bidirectional overrides that reorder what a reviewer sees.
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}


def printable(text: str) -> str:
    """`text` on one line, with control characters shown as escapes (`\\n`, `\\x1b`, `\\u2028`).

    Every user- or provider-supplied string printed for people goes through this: a newline in a
    metadata value or a dataset path must not forge a "Plan:" line, and an ANSI escape must not
    restyle the terminal.
    """
    if not _UNPRINTABLE.search(text):
        return text

    def esc(m: re.Match[str]) -> str:
        c = m.group(0)
        return _NAMED_ESCAPES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")

    return _UNPRINTABLE.sub(esc, text)


def format_diagnostic(d: Diagnostic, source_lines: Sequence[str] | None = None) -> str:
    """Render as `file:line:col: error[code] summary`, then detail, source line and hint."""
    where = printable(f"{d.range}: ") if d.range else ""
    out = [f"{where}{d.severity.value}[{printable(d.code)}] {printable(d.summary)}"]
    if d.address:
        out[0] += f" ({printable(d.address)})"
    if d.detail:
        out.append(f"  {printable(d.detail)}")
    if d.range and source_lines and 0 < d.range.line <= len(source_lines):
        src = printable(source_lines[d.range.line - 1].rstrip("\n"))
        col = max(d.range.column, 1) - 1
        if len(src) > MAX_SOURCE_LINE:  # a hostile or minified line: show a window around the column
            start = max(0, min(col - MAX_SOURCE_LINE // 2, len(src) - MAX_SOURCE_LINE))
            src = ("…" if start else "") + src[start:start + MAX_SOURCE_LINE] + \
                ("…" if start + MAX_SOURCE_LINE < len(src) else "")
            col = col - start + (1 if start else 0)
        out.append(f"  {d.range.line:>4} | {src}")
        out.append("       | " + " " * col + "^")
    if d.hint:
        out.append(f"  hint: {printable(d.hint)}")
    return "\n".join(out)


@dataclass
class DiagnosticList:
    """Collects diagnostics; `raise_if_errors` ends the stage when any is an error."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, d: Diagnostic) -> None:
        self.items.append(d)

    def extend(self, ds: Iterable[Diagnostic]) -> None:
        self.items.extend(ds)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if not d.is_error]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise FtopsError(self.items)


# --------------------------------------------------------------------------- secrets in messages

# What an API key looks like. Strict formats are matched as they are; the loose families
# (`sk-…`, `tgp_…`, `fw_…`, …) also need two digits and two letters in their body, so a
# suffix such as `sk-support-bot-v2` is not a key while any random key is.
_STRICT_KEY = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"A[KS]IA[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub
    r"|github_pat_[A-Za-z0-9_]{40,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google
    r"|[sr]k_live_[0-9A-Za-z]{20,}"  # Stripe
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r")"
)
_LOOSE_KEY = re.compile(
    r"(?<![A-Za-z0-9_-])"
    r"(?:sk-(?:proj-|svcacct-|admin-|ant-(?:api\d\d-)?)?|tgp_(?:v1_)?|fw_|hf_|gsk_|r8_|pplx-|nvapi-|xai-)"
    r"([A-Za-z0-9_-]{20,})"
)


def find_api_key(text: str) -> str | None:
    """The first substring of `text` that looks like an API key, or None.

    Used wherever ftops must refuse or hide a key it did not read from a key variable: config
    values, pasted variable names, training data. Never put the result in a message: pass it
    to `redacted` first.
    """
    keys = find_api_keys(text, first_only=True)
    return keys[0] if keys else None


def find_api_keys(text: str, *, first_only: bool = False) -> list[str]:
    """Every distinct substring of `text` that looks like an API key, in order of appearance."""
    found: list[tuple[int, str]] = [(m.start(), m.group(0)) for m in _STRICT_KEY.finditer(text)]
    if first_only and found:
        return [found[0][1]]
    for m in _LOOSE_KEY.finditer(text):
        body = m.group(1)
        if sum(c.isdigit() for c in body) >= 2 and sum(c.isalpha() for c in body) >= 2:
            found.append((m.start(), m.group(0)))
            if first_only:
                break
    return list(dict.fromkeys(key for _, key in sorted(found)))


def redacted(secret: str, keep: int = 4) -> str:
    """`sk-p…`: enough to recognise which key it was, never enough to use it."""
    return secret[:keep] + "…" if len(secret) > keep else "…"


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every given secret value and every key-like token replaced by its redacted prefix."""
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        if s in text:
            text = text.replace(s, redacted(s))
    key = find_api_key(text)
    while key is not None:
        text = text.replace(key, redacted(key))
        key = find_api_key(text)
    return text
