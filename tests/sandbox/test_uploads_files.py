"""Uploads (parts, ordered completion, md5, size checks, cancel, expiry) and file edge cases."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from ftops.sandbox.dialects import openai as app_module
from tests.sandbox.conftest import FakeClock


def _create(client: httpx.Client, size: int, **extra: Any) -> dict[str, Any]:
    body = {"filename": "data.jsonl", "purpose": "fine-tune", "bytes": size, "mime_type": "text/jsonl", **extra}
    r = client.post("/uploads", json=body)
    assert r.status_code == 200, r.text
    up: dict[str, Any] = r.json()
    return up


def _part(client: httpx.Client, upload_id: str, data: bytes) -> httpx.Response:
    return client.post(f"/uploads/{upload_id}/parts", files={"data": ("blob", data)})


def test_complete_concatenates_parts_in_the_given_order(client: httpx.Client) -> None:
    chunks = [b'{"a": 1}\n', b'{"b": 2}\n', b'{"c": 3}\n']
    up = _create(client, sum(map(len, chunks)))
    ids = [_part(client, up["id"], c).json()["id"] for c in reversed(chunks)]
    ordered = list(reversed(ids))
    done = client.post(f"/uploads/{up['id']}/complete",
                       json={"part_ids": ordered, "md5": hashlib.md5(b"".join(chunks)).hexdigest()}).json()
    assert done["status"] == "completed"
    assert client.get(f"/files/{done['file']['id']}/content").content == b"".join(chunks)
    assert done["file"]["bytes"] == done["bytes"]
    r = client.post(f"/uploads/{up['id']}/complete", json={"part_ids": ordered})
    assert r.status_code == 400  # already completed


@pytest.mark.parametrize("case, param", [("short", "part_ids"), ("md5", "md5"), ("foreign", "part_ids"),
                                         ("dupe", "part_ids")])
def test_complete_rejects_mismatches(client: httpx.Client, case: str, param: str) -> None:
    up = _create(client, 8)
    a = _part(client, up["id"], b"1234").json()["id"]
    b = _part(client, up["id"], b"5678").json()["id"]
    other = _create(client, 4)
    c = _part(client, other["id"], b"abcd").json()["id"]
    body: dict[str, Any] = {
        "short": {"part_ids": [a]},
        "md5": {"part_ids": [a, b], "md5": hashlib.md5(b"wrong").hexdigest()},
        "foreign": {"part_ids": [a, c]},
        "dupe": {"part_ids": [a, a]},
    }[case]
    r = client.post(f"/uploads/{up['id']}/complete", json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == param
    assert client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [a, b]}).status_code == 200


def test_upload_limits_and_validation(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    r = client.post("/uploads", json={"filename": "x.jsonl", "purpose": "fine-tune", "bytes": 8 * 1024**3 + 1,
                                      "mime_type": "text/jsonl"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "bytes"
    r = client.post("/uploads", json={"filename": "x.txt", "purpose": "fine-tune", "bytes": 3,
                                      "mime_type": "text/plain"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "filename"
    r = client.post("/uploads", json={"filename": "x.jsonl", "purpose": "fine-tune", "bytes": 3})
    assert r.status_code == 400 and r.json()["error"]["param"] == "mime_type"
    for bad in ("image/png", "not a mime", "text/"):  # checked: a .jsonl fine-tune upload needs a JSON-ish type
        r = client.post("/uploads", json={"filename": "x.jsonl", "purpose": "fine-tune", "bytes": 3,
                                          "mime_type": bad})
        assert r.status_code == 400 and r.json()["error"]["param"] == "mime_type", bad
    monkeypatch.setattr(app_module, "PART_MAX_BYTES", 8)
    up = _create(client, 20)
    r = _part(client, up["id"], b"x" * 9)
    assert r.status_code == 400 and r.json()["error"]["code"] == "file_too_large"


def test_cancel_and_expiry(client: httpx.Client, clock: FakeClock) -> None:
    up = _create(client, 4)
    _part(client, up["id"], b"abcd")
    cancelled = client.post(f"/uploads/{up['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["file"] is None
    assert client.post(f"/uploads/{up['id']}/cancel").status_code == 400
    late = _create(client, 4)
    part = _part(client, late["id"], b"abcd").json()["id"]
    clock.advance(3601)
    r = client.post(f"/uploads/{late['id']}/complete", json={"part_ids": [part]})
    assert r.status_code == 400 and "expired" in r.json()["error"]["message"]
    assert client.post("/uploads/upload_nope/cancel").status_code == 404


def test_file_size_limit_and_purposes(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "FILE_MAX_BYTES", 10)
    r = client.post("/files", files={"file": ("t.jsonl", b"x" * 11)}, data={"purpose": "fine-tune"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "file_too_large"
    r = client.post("/files", files={"file": ("t.jsonl", b"{}")}, data={"purpose": "fine-tuning"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
    r = client.post("/files", files={"file": ("t.jsonl", b"{}")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
    r = client.post("/files", data={"purpose": "fine-tune"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    assert client.get("/files").json()["data"] == []


def test_file_expiry_and_delete(client: httpx.Client, clock: FakeClock) -> None:
    r = client.post("/files", files={"file": ("b.jsonl", b"{}\n")},
                    data={"purpose": "batch", "expires_after[anchor]": "created_at",
                          "expires_after[seconds]": "3600"})
    assert r.status_code == 200 and r.json()["expires_at"] == r.json()["created_at"] + 3600
    clock.advance(3601)
    assert client.get(f"/files/{r.json()['id']}").status_code == 404
    assert client.delete("/files/file-nope").status_code == 404


def test_upload_expires_after_applies_to_the_file(client: httpx.Client) -> None:
    up = _create(client, 3, purpose="batch", filename="b.jsonl",
                 expires_after={"anchor": "created_at", "seconds": 7200})
    part = _part(client, up["id"], b"{}\n").json()["id"]
    done = client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part]}).json()
    assert done["file"]["expires_at"] == done["file"]["created_at"] + 7200
    r = client.post("/uploads", json={"filename": "b.jsonl", "purpose": "batch", "bytes": 3, "mime_type": "application/jsonl",
                                      "expires_after": {"anchor": "created_at", "seconds": 10}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "expires_after"
