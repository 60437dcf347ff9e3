"""Vertex AI's tuningJobs and GCS's JSON API in the sandbox, over raw REST (as the docs spell the
requests): upload, object metadata, create with labels, list by label filter, cancel, generateContent."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from ftops.sandbox import SandboxApp, SandboxSettings
from ftops.sandbox import in_process_transport
from tests.sandbox.conftest import FakeClock

AUTH = {"Authorization": "Bearer ya29.test"}
PARENT = "projects/p1/locations/us-central1"


def gemini_lines(n: int) -> bytes:
    return "".join(json.dumps({"systemInstruction": {"role": "system", "parts": [{"text": "Be terse."}]},
                               "contents": [{"role": "user", "parts": [{"text": f"question {i} topic{i}"}]},
                                            {"role": "model", "parts": [{"text": f"answer {i}"}]}]}) + "\n"
                   for i in range(n)).encode()


def test_vertex_and_gcs_rest(tmp_path: Path, clock: FakeClock) -> None:
    app = SandboxApp(tmp_path / "db", settings=SandboxSettings(time_scale=100.0), clock=clock)
    c = httpx.Client(transport=in_process_transport(app), base_url="http://sandbox.local")
    assert c.get("/gcs/storage/v1/b/b/o").status_code == 401
    up = c.post("/gcs/upload/storage/v1/b/b/o", params={"uploadType": "media", "name": "d/t.jsonl"},
                content=gemini_lines(12), headers=AUTH)
    assert up.status_code == 200 and up.json()["size"] == str(len(gemini_lines(12)))
    assert c.get("/gcs/storage/v1/b/b/o/d%2Ft.jsonl", headers=AUTH).json()["name"] == "d/t.jsonl"
    assert [o["name"] for o in c.get("/gcs/storage/v1/b/b/o", params={"prefix": "d/"}, headers=AUTH).json()["items"]] \
        == ["d/t.jsonl"]
    body = {"baseModel": "gemini-2.0-flash-001", "tunedModelDisplayName": "t",
            "supervisedTuningSpec": {"trainingDatasetUri": "gs://b/d/t.jsonl", "hyperParameters": {"epochCount": 2}},
            "labels": {"ftops_pk": "abcd", "ftops_model": "m"}}
    for version in ("v1", "v1beta1"):
        r = c.post(f"/vertex/{version}/{PARENT}/tuningJobs", json=body, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "JOB_STATE_PENDING"
    bad = c.post(f"/vertex/v1/{PARENT}/tuningJobs", json={**body, "labels": {"Upper": "x"}}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    listed = c.get(f"/vertex/v1/{PARENT}/tuningJobs", params={"filter": 'labels.ftops_pk="abcd"'}, headers=AUTH)
    names = [j["name"] for j in listed.json()["tuningJobs"]]
    assert len(names) == 2
    assert c.get(f"/vertex/v1/{PARENT}/tuningJobs", params={"filter": 'labels.ftops_pk="zzzz"'},
                 headers=AUTH).json()["tuningJobs"] == []
    assert c.post(f"/vertex/v1/{names[0]}:cancel", headers=AUTH).status_code == 200
    assert c.get(f"/vertex/v1/{names[0]}", headers=AUTH).json()["state"] == "JOB_STATE_CANCELLED"
    clock.advance(3600)
    done = c.get(f"/vertex/v1/{names[1]}", headers=AUTH).json()
    assert done["state"] == "JOB_STATE_SUCCEEDED", done
    endpoint = done["tunedModel"]["endpoint"]
    gen = c.post(f"/vertex/v1/{endpoint}:generateContent", headers=AUTH,
                 json={"contents": [{"role": "user", "parts": [{"text": "question 5 topic5"}]}]})
    assert gen.json()["candidates"][0]["content"]["parts"][0]["text"] == "answer 5"
