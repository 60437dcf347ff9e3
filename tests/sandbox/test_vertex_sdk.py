"""Vertex AI's dialect driven by Google's official client, `google-genai` (`genai.Client(vertexai=True)`),
against a sandbox served on loopback: the requests are the SDK's own (paths, casing, v1 and v1beta1)
and the answers must parse into its types. Also: ftops's own REST requests and the SDK's land on the
same routes, and each side reads the jobs the other created.

The truth is read from the sandbox's database as well as from the answers."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.routing import EndpointPrefix, Map, Submount

from ftops.providers.base import Identity
from ftops.providers.vertex import VertexProvider
from ftops.sandbox import SandboxApp, SandboxSettings, serving
from tests.sandbox.conftest import FakeClock

genai = pytest.importorskip("google.genai")
from google.genai import errors as genai_errors  # noqa: E402
from google.genai import types  # noqa: E402
from google.oauth2.credentials import Credentials  # noqa: E402

PROJECT, LOCATION, BUCKET = "p1", "us-central1", "training"
TOKEN = "ya29.sandbox-token"


@dataclass
class Served:
    url: str
    app: SandboxApp
    clock: FakeClock
    db: Path
    seen: list[tuple[str, str]] = field(default_factory=list)

    def routes(self, since: int = 0) -> set[tuple[str, str, str, str]]:
        """(method, dialect.endpoint, API version, `:verb`) of each request recorded after `since`."""
        dialects = [self.app.dialect("vertex"), self.app.dialect("gcs")]
        adapter = Map([Submount(d.prefix, [EndpointPrefix(f"{d.name}.", d.rules())]) for d in dialects]).bind("x")
        out = set()
        for method, path in self.seen[since:]:
            endpoint, values = adapter.match(path, method=method)
            last = path.rsplit("/", 1)[-1]
            out.add((method, str(endpoint), str(values.get("version", "")), last.partition(":")[2]))
        return out



@pytest.fixture
def served(tmp_path: Path, clock: FakeClock) -> Iterator[Served]:
    db = tmp_path / "sandbox.db"
    app = SandboxApp(db, settings=SandboxSettings(time_scale=100.0), clock=clock)
    s = Served(url="", app=app, clock=clock, db=db)
    lock = threading.Lock()

    def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            s.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        return app(environ, start_response)

    with serving(recording) as s.url:
        yield s


def sdk(served: Served, version: str = "v1") -> Any:
    warnings.filterwarnings("ignore", message=".*experimental.*")
    return genai.Client(vertexai=True, project=PROJECT, location=LOCATION, credentials=Credentials(token=TOKEN),
                        http_options=types.HttpOptions(base_url=served.url + "/vertex", api_version=version))


def put_gcs(served: Served, name: str, lines: list[dict[str, Any]]) -> str:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    r = httpx.post(f"{served.url}/gcs/upload/storage/v1/b/{BUCKET}/o", params={"uploadType": "media", "name": name},
                   content=data, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    return f"gs://{BUCKET}/{name}"


def sft_lines(n: int) -> list[dict[str, Any]]:
    return [{"systemInstruction": {"role": "system", "parts": [{"text": "Be terse."}]},
             "contents": [{"role": "user", "parts": [{"text": f"question {i} topic{i}"}]},
                          {"role": "model", "parts": [{"text": f"answer {i}"}]}]} for i in range(n)]


def preference_lines(n: int, *, scores: tuple[int, int] = (1, 0)) -> list[dict[str, Any]]:
    return [{"system_instruction": {"parts": [{"text": "Be terse."}]},
             "contents": [{"role": "user", "parts": [{"text": f"question {i} topic{i}"}]}],
             "completions": [{"score": scores[0], "completion": {"role": "model", "parts": [{"text": f"short {i}"}]}},
                             {"score": scores[1], "completion": {"role": "model",
                                                                 "parts": [{"text": f"a long rambling reply {i}"}]}}]}
            for i in range(n)]


def rows(served: Served) -> dict[str, str]:
    with sqlite3.connect(served.db) as db:
        return dict(db.execute("SELECT id, status FROM jobs WHERE dialect = 'vertex'").fetchall())


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_sdk_tunes_gets_lists_cancels_and_generates(served: Served, version: str) -> None:
    client = sdk(served, version)
    train = put_gcs(served, "d/train.jsonl", sft_lines(12))
    val = put_gcs(served, "d/val.jsonl", sft_lines(3))
    config = types.CreateTuningJobConfig(
        epoch_count=2, learning_rate_multiplier=0.5, adapter_size=types.AdapterSize.ADAPTER_SIZE_FOUR,
        tuned_model_display_name="sdk", labels={"team": "cx"},
        validation_dataset=types.TuningValidationDataset(gcs_uri=val))
    job = client.tunings.tune(base_model="gemini-2.0-flash-001",
                              training_dataset=types.TuningDataset(gcs_uri=train), config=config)
    assert job.name.startswith(f"projects/{PROJECT}/locations/{LOCATION}/tuningJobs/")
    assert job.state == types.JobState.JOB_STATE_PENDING
    spec = job.supervised_tuning_spec
    assert spec is not None and spec.training_dataset_uri == train and spec.validation_dataset_uri == val
    assert spec.hyper_parameters.epoch_count == 2 and spec.hyper_parameters.adapter_size == "ADAPTER_SIZE_FOUR"
    assert job.labels == {"team": "cx"} and job.tuned_model_display_name == "sdk"

    other = client.tunings.tune(base_model="gemini-2.0-flash-001", training_dataset=types.TuningDataset(gcs_uri=train),
                                config=types.CreateTuningJobConfig(labels={"team": "ml"}))
    listed = list(client.tunings.list(config=types.ListTuningJobsConfig(page_size=1)))
    assert {j.name for j in listed} == {job.name, other.name}  # two pages of one
    only = list(client.tunings.list(config=types.ListTuningJobsConfig(filter='labels.team="ml"')))
    assert [j.name for j in only] == [other.name]

    client.tunings.cancel(name=other.name)
    assert client.tunings.get(name=other.name).state == types.JobState.JOB_STATE_CANCELLED
    served.clock.advance(7200)
    done = client.tunings.get(name=job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED and done.end_time is not None
    assert done.tuned_model is not None and done.tuned_model.endpoint
    assert rows(served) == {job.name: "succeeded", other.name: "cancelled"}

    answer = client.models.generate_content(model=done.tuned_model.endpoint, contents="question 5 topic5")
    assert answer.text == "answer 5"
    assert {r[2] for r in served.routes()} == {version, ""}  # "": the GCS uploads
    with pytest.raises(genai_errors.ClientError) as exc:
        client.tunings.get(name=f"projects/{PROJECT}/locations/{LOCATION}/tuningJobs/404")
    assert exc.value.code == 404 and exc.value.status == "NOT_FOUND"


def test_sdk_preference_tuning(served: Served) -> None:
    client = sdk(served, "v1beta1")
    train = put_gcs(served, "d/pref.jsonl", preference_lines(12))
    config = types.CreateTuningJobConfig(method="PREFERENCE_TUNING", epoch_count=1, beta=0.2,
                                         learning_rate_multiplier=1.0, adapter_size="ADAPTER_SIZE_TWO")
    job = client.tunings.tune(base_model="gemini-2.5-flash", training_dataset=types.TuningDataset(gcs_uri=train),
                              config=config)
    assert job.supervised_tuning_spec is None
    spec = job.preference_optimization_spec
    assert spec is not None and spec.training_dataset_uri == train
    assert spec.hyper_parameters.beta == 0.2 and spec.hyper_parameters.adapter_size == "ADAPTER_SIZE_TWO"
    served.clock.advance(7200)
    done = client.tunings.get(name=job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    answer = client.models.generate_content(model=done.tuned_model.endpoint, contents="question 7 topic7")
    assert answer.text == "short 7"  # the preferred completion

    refused = [
        ("gemini-2.0-flash-001", train, {}),  # no preference tuning for this base
        ("gemini-2.5-flash", put_gcs(served, "d/tie.jsonl", preference_lines(12, scores=(1, 1))), {}),
        ("gemini-2.5-flash", put_gcs(served, "d/sft.jsonl", sft_lines(12)), {}),  # SFT lines are not preference
        ("gemini-2.5-flash", train, {"adapter_size": "ADAPTER_SIZE_THIRTY_TWO"}),
    ]
    for base, uri, extra in refused:
        with pytest.raises(genai_errors.ClientError) as exc:
            client.tunings.tune(base_model=base, training_dataset=types.TuningDataset(gcs_uri=uri),
                                config=types.CreateTuningJobConfig(method="PREFERENCE_TUNING", **extra))
        assert exc.value.code == 400 and exc.value.status == "INVALID_ARGUMENT", (base, uri, extra)
    assert len(rows(served)) == 1


def test_ftops_and_the_sdk_use_the_same_routes_and_read_each_others_jobs(served: Served, tmp_path: Path) -> None:
    http = httpx.Client(base_url=served.url + "/vertex", timeout=10)
    provider = VertexProvider(http, api_key=TOKEN, gcp_project=PROJECT, region=LOCATION, bucket=BUCKET,
                              prefix="ftops")
    src = tmp_path / "t.jsonl"
    src.write_text("".join(json.dumps(line) + "\n" for line in sft_lines(12)))
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    f = provider.upload_file(src, sha256=sha, display_path="t.jsonl")
    ident = Identity(project="proj", model="bot", fingerprint="F1")
    body = {"baseModel": "gemini-2.0-flash-001", "hyperParameters": {"epochCount": 2}, "training_file": f"sha256:{sha}"}

    start = len(served.seen)
    mine = provider.create_job(body, ident, {sha: f.id})
    assert [j.id for j in provider.list_jobs("proj")] == [mine.id]
    provider.get_job(mine.id)
    ftops_routes = served.routes(start)
    provider.cancel_job(mine.id)
    other = provider.create_job(body, Identity(project="proj", model="bot2", fingerprint="F2"), {sha: f.id})
    served.clock.advance(7200)
    endpoint = provider.get_job(other.id).fine_tuned_model
    assert endpoint
    provider.chat(endpoint, [{"role": "user", "content": "question 3 topic3"}])
    ftops_all = served.routes(start)

    client = sdk(served, "v1")
    start = len(served.seen)
    theirs = client.tunings.tune(base_model="gemini-2.0-flash-001", training_dataset=types.TuningDataset(gcs_uri=f.id),
                                 config=types.CreateTuningJobConfig(epoch_count=2))
    list(client.tunings.list())
    client.tunings.get(name=theirs.name)
    sdk_routes = served.routes(start)
    client.tunings.cancel(name=theirs.name)
    client.models.generate_content(model=endpoint, contents="question 3 topic3")
    sdk_all = served.routes(start)

    assert ftops_routes == sdk_routes == {("POST", "vertex.jobs", "v1", ""), ("GET", "vertex.jobs", "v1", ""),
                                          ("GET", "vertex.job", "v1", "")}
    assert {r for r in ftops_all if r[1].startswith("vertex.")} == sdk_all
    assert ("POST", "vertex.job", "v1", "cancel") in sdk_all
    assert ("POST", "vertex.endpoint", "v1", "generateContent") in sdk_all

    # Each reads the other's jobs: the SDK sees ftops's identity labels, ftops parses the SDK's job.
    seen_by_sdk = client.tunings.get(name=mine.id)
    assert seen_by_sdk.state == types.JobState.JOB_STATE_CANCELLED
    assert seen_by_sdk.labels["ftops_group"] == provider.group_key("proj", "bot", "F1")
    seen_by_ftops = provider.get_job(theirs.name)
    assert seen_by_ftops.status == "JOB_STATE_CANCELLED" and seen_by_ftops.training_file == f.id
    assert seen_by_ftops.group is None  # not ftops's: no identity labels
