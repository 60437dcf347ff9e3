"""Uploads against a streaming fake server: constant memory, Uploads API parts and md5, part retries."""

from __future__ import annotations

import hashlib
import json
import random
import tracemalloc
from pathlib import Path

import httpx
import pytest

from ftops.providers import OpenAIProvider, TransportError

from . import spec
from .conftest import API_KEY, body_of, identity, upload


class StreamingServer(httpx.BaseTransport):
    """Consumes request bodies chunk by chunk (never whole) and answers /files and /uploads."""

    def __init__(self, lose_first_part: bool = False, fail_direct: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.parts: dict[str, tuple[int, str]] = {}  # part id -> (bytes, md5 of payload incl. multipart)
        self.part_payload: dict[str, bytes] = {}
        self.lose_first_part = lose_first_part
        self.fail_direct = fail_direct
        self.completed: dict | None = None
        self.body_bytes = 0
        self.max_chunk = 0

    def _drain(self, request: httpx.Request, keep: bool) -> bytes:
        kept = bytearray()
        for chunk in request.stream:  # type: ignore[union-attr]
            self.body_bytes += len(chunk)
            self.max_chunk = max(self.max_chunk, len(chunk))
            if keep:
                kept += chunk
        return bytes(kept)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1")
        self.calls.append((request.method, path))
        if path == "/files":
            self._drain(request, keep=False)
            if self.fail_direct:
                raise httpx.ReadTimeout("lost")
            return httpx.Response(200, json={"id": "file-direct", "object": "file", "filename": "d.jsonl",
                                             "bytes": int(request.headers["content-length"]),
                                             "purpose": "fine-tune", "created_at": 1, "status": "processed"})
        if path == "/uploads":
            body = json.loads(self._drain(request, keep=True))
            self.upload_req = body
            return httpx.Response(200, json={"id": "upload_1", "object": "upload", "status": "pending",
                                             **body, "created_at": 1, "expires_at": 3601})
        if path.endswith("/parts"):
            raw = self._drain(request, keep=True)  # parts are small in these tests
            ctype = request.headers["content-type"]
            boundary = ctype.split("boundary=")[1].encode()
            section = raw.split(b"--" + boundary)[1]
            payload = section.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
            pid = f"part_{len(self.part_payload)}"
            self.part_payload[pid] = payload
            if self.lose_first_part and len(self.part_payload) == 1:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            return httpx.Response(200, json={"id": pid, "object": "upload.part", "upload_id": "upload_1",
                                             "created_at": 1})
        if path.endswith("/complete"):
            body = json.loads(self._drain(request, keep=True))
            self.completed = body
            data = b"".join(self.part_payload[p] for p in body["part_ids"])
            assert hashlib.md5(data).hexdigest() == body["md5"]
            return httpx.Response(200, json={"id": "upload_1", "object": "upload", "status": "completed",
                                             "file": {"id": "file-big", "object": "file", "filename": "b.jsonl",
                                                      "bytes": len(data), "purpose": "fine-tune",
                                                      "created_at": 1, "status": "processed"}})
        if path.endswith("/cancel"):
            return httpx.Response(200, json={"id": "upload_1", "status": "cancelled"})
        return httpx.Response(404, json={"error": {"message": "no route"}})


def provider(server: StreamingServer, **kw) -> OpenAIProvider:
    sleeps: list[float] = []
    return OpenAIProvider(httpx.Client(transport=server, base_url="http://fake/v1"), api_key=API_KEY,
                          sleep=sleeps.append, rng=random.Random(0), **kw)


def write_file(path: Path, size: int) -> bytes:
    rng = random.Random(size)
    data = bytes(rng.getrandbits(8) for _ in range(min(size, 4096)))
    data = (data * (size // len(data) + 1))[:size]
    path.write_bytes(data)
    return data


def test_direct_upload_streams_in_constant_memory(tmp_path):
    size = 24 * 1024 * 1024
    f = tmp_path / "big.jsonl"
    write_file(f, size)
    server = StreamingServer()
    p = provider(server)
    progress: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        rf = upload(p, f, "big.jsonl", on_progress=lambda a, b: progress.append((a, b)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rf.id == "file-direct"
    assert server.body_bytes > size
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte upload"
    assert progress[-1] == (size, size) and len(progress) > 10


def test_uploads_api_parts_in_order_with_md5(tmp_path, request):
    size = 10_000
    f = tmp_path / "b.jsonl"
    data = write_file(f, size)
    server = StreamingServer()
    p = provider(server, upload_threshold=1000, upload_part_bytes=3000)
    seen: list[int] = []
    rf = upload(p, f, "b.jsonl", on_progress=lambda a, b: seen.append(a))
    assert rf.id == "file-big" and rf.bytes == size
    assert server.upload_req == {"filename": f"b.sha256-{hashlib.sha256(data).hexdigest()}.jsonl",
                                 "purpose": "fine-tune", "bytes": size,
                                 "mime_type": "text/jsonl"}
    assert server.completed is not None
    assert server.completed["part_ids"] == ["part_0", "part_1", "part_2", "part_3"]
    assert b"".join(server.part_payload[i] for i in server.completed["part_ids"]) == data
    assert server.completed["md5"] == hashlib.md5(data).hexdigest()
    assert seen == sorted(seen) and seen[-1] == size
    spec_path = request.getfixturevalue("openapi_spec_path")  # skips here when ../shared is absent
    spec.validate(spec_path, "CreateUploadRequest", server.upload_req)
    spec.validate(spec_path, "CompleteUploadRequest", server.completed)


def test_uploads_api_part_lost_response_is_resent(tmp_path):
    f = tmp_path / "b.jsonl"
    data = write_file(f, 5000)
    server = StreamingServer(lose_first_part=True)
    p = provider(server, upload_threshold=1000, upload_part_bytes=3000)
    upload(p, f, "b.jsonl")
    # part_0 was stored but its answer lost: the resent part_1 is used, part_0 is left out
    assert server.completed["part_ids"] == ["part_1", "part_2"]
    assert b"".join(server.part_payload[i] for i in server.completed["part_ids"]) == data


def test_direct_upload_lost_response_is_not_resent(tmp_path):
    f = tmp_path / "a.jsonl"
    write_file(f, 100)
    server = StreamingServer(fail_direct=True)
    with pytest.raises(TransportError) as ei:
        upload(provider(server), f, "a.jsonl")
    assert ei.value.maybe_committed
    assert server.calls == [("POST", "/files")]


def test_too_large_for_direct_upload_without_uploads_api(tmp_path):
    from ftops.providers import Capabilities, ProviderError
    f = tmp_path / "a.jsonl"
    write_file(f, 2000)
    caps = Capabilities(name="tiny", uploads_api=False, max_file_bytes=1000)
    server = StreamingServer()
    with pytest.raises(ProviderError) as ei:
        upload(provider(server, capabilities=caps, upload_threshold=500), f, "a.jsonl")
    assert ei.value.code == "file_too_large"
    assert server.calls == []
