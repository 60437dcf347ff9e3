"""Fingerprints: the identity of a training job, computed from the request actually sent.

The *training* fingerprint hashes what the provider's `fingerprint_material` returns for the
translated request: the body with file ids replaced by the sha256 of the dataset bytes
(`sha256:<hex>`), without identity fields (metadata, suffix tags, client-chosen ids, tokens) and,
for every provider but OpenAI (whose fingerprints predate the boundary), tagged with the provider
type. Whatever defines the trained weights is covered, and nothing else is: renaming a dataset file,
re-uploading the same bytes, or editing free-form metadata never retrains; moving a model to
another provider always does.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

FINGERPRINT_VERSION = "1"
FP_LENGTH = 32  # hex chars (128 bits): short enough for metadata values and humans, long enough to never collide

def canonical_json(value: Any) -> str:
    """Stable JSON: sorted keys, no whitespace, floats as repr. Equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def file_placeholder(sha256: str) -> str:
    return f"sha256:{sha256}"


def fingerprint(material: dict[str, Any]) -> str:
    """Fingerprint of a provider's fingerprint material (placeholders for files)."""
    digest = hashlib.sha256(f"ftops-fp-v{FINGERPRINT_VERSION}\n{canonical_json(material)}".encode())
    return digest.hexdigest()[:FP_LENGTH]


def derived_seed(project: str, model: str) -> int:
    """A seed picked for a model that declares none: stable across machines and lost state files."""
    d = hashlib.sha256(f"ftops-seed\n{project}\n{model}".encode()).digest()
    return int.from_bytes(d[:4], "big") & 0x7FFFFFFF
