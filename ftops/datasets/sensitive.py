"""Sensitive-data detectors: secrets, e-mail addresses, phone and card numbers.

OpenAI's usage guidance says training data must not carry personal data or credentials. Secrets
(API keys, private keys) are errors: a model trained on a key can repeat it to anyone. Each secret
finding carries an id (`sha256:` + 12 hex digits of the secret) that ftops.yaml's `allow_secrets`
lists to accept a deliberate fake; the secret itself is never written anywhere.
Detectors run on the decoded JSON strings (`scan_example`), so `sk-\\u0070roj…` or
`a\\u0040b.com` are found as `sk-proj…` and `a@b.com`.
Regexes cost ~10 ns per character in CPython, too much to run over every line of a 500 MB
file, so each detector first runs a C-speed pre-filter on the raw line bytes (a digit count
via bytes.translate, a run of 20 key-like characters, an "@"), and the regex only when it hits.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ftops.diagnostics import find_api_keys, redacted

#: Findings that are errors unless accepted (`allow_secrets` in ftops.yaml); the rest are warnings.
SECRET_CODES = frozenset({"sensitive_api_key", "sensitive_private_key"})
_FINDING_ID = re.compile(r"\bsha256:[0-9a-f]{12}\b")
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Phone numbers need separators or a leading "+", so plain integers are not flagged.
# Both run on the raw UTF-8 bytes, in small windows around each run of 3+ digits.
_PHONE = re.compile(
    rb"(?<![\w+/.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![\w/])"
    rb"|(?<![\w+/])\+\d{10,14}(?![\w/])"
)
_CARD = re.compile(rb"(?<![\w+/.-])(?:\d[ -]?){12,18}\d(?![\w/])")
_DIGIT_CLASS = bytes(100 if 48 <= c <= 57 else 32 for c in range(256))  # digit -> b"d", else b" "
# Key-like characters (ASCII letters, digits, "_", "-") -> b"a", everything else -> b" ".
_KEY_CLASS = bytes(97 if (c < 128 and chr(c).isalnum()) or c in b"_-" else 32 for c in range(256))
_KEY_RUN = b"a" * 20


def luhn_ok(digits: str) -> bool:
    """Luhn checksum, used to tell card numbers from other long digit runs."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def finding_id(secret: str) -> str:
    """`sha256:` + 12 hex digits: names a secret in messages and in `allow_secrets` without showing it."""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def finding_id_in(message: str) -> str | None:
    """The finding id a secret finding's message carries, if any."""
    m = _FINDING_ID.search(message)
    return m.group(0) if m else None


def decoded_strings(obj: Any) -> str:
    """Every string of a decoded JSON value (keys too), one per line; iterative, so a deeply
    nested example cannot exhaust the stack."""
    out: list[str] = []
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            out.extend(k for k in value if isinstance(k, str))
            stack.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            stack.extend(reversed(value))
    return "\n".join(out)


def scan_example(obj: Any, text: str, raw: bytes) -> list[tuple[str, str]]:
    """`scan` of one example: its raw line when it has no escapes (the same strings, cheaper), else
    its decoded strings, so a JSON escape cannot hide a key or an address."""
    if b"\\" not in raw:
        return scan(text, raw)
    return scan(decoded_strings(obj))


def scan(text: str, raw: bytes | None = None) -> list[tuple[str, str]]:
    """(code, message) for each kind of sensitive data found in `text` (at most one per kind, except
    API keys: one per distinct key, so accepting one cannot hide another).

    `raw` is the UTF-8 encoding of `text` when the caller has it (saves an encode).
    """
    if raw is None:
        raw = text.encode("utf-8", "surrogatepass")
    found: list[tuple[str, str]] = []
    if b"PRIVATE KEY-----" in raw:
        pk = _PRIVATE_KEY.search(text)
        if pk is not None:
            block = text[pk.start(): pk.start() + 400]
            found.append(("sensitive_private_key",
                          f"a private key block (-----BEGIN ... PRIVATE KEY-----, {finding_id(block)})"))
    if _KEY_RUN in raw.translate(_KEY_CLASS):
        for key in find_api_keys(text):
            found.append(("sensitive_api_key", f"what looks like an API key ({redacted(key, 5)}, {finding_id(key)})"))
    at = text.find("@")
    while at >= 0:
        e = _EMAIL.search(text, max(0, at - 64), at + 256)
        if e is not None and e.start() <= at < e.end():
            found.append(("sensitive_email", f"an e-mail address ({_mask(e.group(0))})"))
            break
        at = text.find("@", at + 1)
    classes = raw.translate(_DIGIT_CLASS)
    pos = classes.find(b"ddd")
    card: bytes | None = None
    phone: bytes | None = None
    n = len(raw)
    while pos >= 0 and (card is None or phone is None):
        lo, hi = max(0, pos - 24), min(n, pos + 64)
        digits_near = classes.count(b"d", lo, hi)  # a phone number has 7+ digits, a card 13+
        if card is None and digits_near >= 13:
            for b in _CARD.finditer(raw, lo, hi):
                digits = b.group(0).replace(b" ", b"").replace(b"-", b"")
                if 13 <= len(digits) <= 19 and luhn_ok(digits.decode()):
                    card = digits
                    break
        if phone is None and digits_near >= 7:
            for b in _PHONE.finditer(raw, lo, hi):
                digits = re.sub(rb"\D", b"", b.group(0))
                if not (card and digits in card):
                    phone = b.group(0)
                    break
        end = classes.find(b" ", pos)
        if end < 0:
            break
        pos = classes.find(b"ddd", end)
    if card is not None:
        found.append(("sensitive_card_number", f"a payment card number (…{card[-4:].decode()}, passes Luhn)"))
    if phone is not None:
        found.append(("sensitive_phone", f"a phone number ({_mask(phone.decode())})"))
    return found


def _mask(s: str) -> str:
    return s[:3] + "…" if len(s) > 4 else "…"
