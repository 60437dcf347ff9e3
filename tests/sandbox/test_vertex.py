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


def test_vertex_preference_spec_rules(tmp_path: Path, clock: FakeClock) -> None:
    app = SandboxApp(tmp_path / "db", settings=SandboxSettings(time_scale=100.0), clock=clock)
    c = httpx.Client(transport=in_process_transport(app), base_url="http://sandbox.local")
    pref = "".join(json.dumps({"systemInstruction": {"parts": [{"text": "Be terse."}]},
                               "contents": [{"role": "user", "parts": [{"text": f"q{i}"}]}],
                               "completions": [{"score": s, "completion": {"role": "model", "parts": [{"text": t}]}}
                                               for s, t in ((0, "no"), (1, "ok"))]})
                   + "\n" for i in range(10)).encode()
    c.post("/gcs/upload/storage/v1/b/b/o", params={"uploadType": "media", "name": "p.jsonl"}, content=pref,
           headers=AUTH)
    c.post("/gcs/upload/storage/v1/b/b/o", params={"uploadType": "media", "name": "s.jsonl"}, content=gemini_lines(10),
           headers=AUTH)
    url = f"/vertex/v1/{PARENT}/tuningJobs"
    dpo = {"trainingDatasetUri": "gs://b/p.jsonl", "hyperParameters": {"epochCount": "2", "beta": 0.5}}
    sft = {"trainingDatasetUri": "gs://b/s.jsonl"}
    bad = [
        {"baseModel": "gemini-2.5-flash", "preferenceOptimizationSpec": dpo, "supervisedTuningSpec": sft},
        {"baseModel": "gemini-2.5-flash"},
        {"baseModel": "gemini-2.5-pro", "preferenceOptimizationSpec": dpo},
        {"baseModel": "gemini-2.5-flash", "preferenceOptimizationSpec": {**dpo, "hyperParameters": {"beta": -1}}},
        {"baseModel": "gemini-2.5-flash", "supervisedTuningSpec": {**sft, "hyperParameters": {"beta": 0.1}}},
        {"baseModel": "gemini-2.5-flash", "supervisedTuningSpec": {**sft, "hyperParameters": {
            "adapterSize": "ADAPTER_SIZE_TWO"}}},
        {"baseModel": "gemini-2.5-flash",
         "preferenceOptimizationSpec": {**dpo, "trainingDatasetUri": "gs://b/s.jsonl"}},
        {"baseModel": "gemini-2.5-flash", "supervisedTuningSpec": {"trainingDatasetUri": "gs://b/p.jsonl"}},
    ]
    for body in bad:
        r = c.post(url, json=body, headers=AUTH)
        assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT", (body, r.text)
    r = c.post(url, json={"baseModel": "publishers/google/models/gemini-2.5-flash-lite",
                          "preferenceOptimizationSpec": dpo}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["preferenceOptimizationSpec"] == dpo and "supervisedTuningSpec" not in r.json()
    clock.advance(3600)
    done = c.get(f"/vertex/v1/{r.json()['name']}", headers=AUTH).json()
    gen = c.post(f"/vertex/v1/{done['tunedModel']['endpoint']}:generateContent", headers=AUTH,
                 json={"contents": [{"role": "user", "parts": [{"text": "q3"}]}]})
    assert gen.json()["candidates"][0]["content"]["parts"][0]["text"] == "ok"  # the score-1 completion
