"""Fixtures for the sandbox tests: an injected clock, an in-process client, datasets, and a
validator for the component schemas of OpenAI's OpenAPI description."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ftops.sandbox import SandboxApp, SandboxSettings
from ftops.sandbox.testing import in_process_client

T0 = 1_760_000_000.0  # 2025-10-09, before the catalogue's shutdown dates
# Settings for tests on a fixed clock: an uploaded file is processed by the next request.
QUICK = SandboxSettings(file_processing_s=0.0)


class FakeClock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def chat_lines(n: int, *, prefix: str = "q") -> list[str]:
    return [json.dumps({"messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": f"{prefix} question number {i} about topic{i}"},
        {"role": "assistant", "content": f"answer {i} for topic{i}"},
    ]}) for i in range(n)]


def jsonl(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sandbox.db"


@pytest.fixture
def make_app(db_path: Path, clock: FakeClock) -> Callable[..., SandboxApp]:
    def make(**settings: Any) -> SandboxApp:
        # Files finish processing at the next request unless a test asks for processing time.
        settings.setdefault("file_processing_s", 0.0)
        return SandboxApp(db_path, settings=SandboxSettings(**settings), clock=clock)

    return make


@pytest.fixture
def app(make_app: Callable[..., SandboxApp]) -> SandboxApp:
    return make_app()


@pytest.fixture
def client(app: SandboxApp) -> Iterator[httpx.Client]:
    with in_process_client(app) as c:
        yield c


def upload(client: httpx.Client, data: bytes, *, name: str = "train.jsonl", purpose: str = "fine-tune") -> str:
    r = client.post("/files", files={"file": (name, data)}, data={"purpose": purpose})
    assert r.status_code == 200, r.text
    file_id: str = r.json()["id"]
    return file_id


def create_job(client: httpx.Client, **body: Any) -> dict[str, Any]:
    r = client.post("/fine_tuning/jobs", json=body)
    assert r.status_code == 200, r.text
    job: dict[str, Any] = r.json()
    return job


# -- OpenAPI schema validation -----------------------------------------------------------------

def _modernise(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 idioms still present in the 3.1 file into JSON Schema 2020-12:
    `nullable: true` -> also accept null; boolean `exclusiveMinimum/Maximum` -> numeric form."""
    if isinstance(node, list):
        return [_modernise(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: _modernise(v) for k, v in node.items()}
    for bound, excl in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(node.get(excl), bool):
            if node.pop(excl) and bound in node:
                node[excl] = node.pop(bound)
    if "allOf" in node:
        parts = node["allOf"]
        nullable_only = [p for p in parts if p == {"nullable": True}]
        if nullable_only:
            rest = [p for p in parts if p != {"nullable": True}]
            node.pop("allOf")
            return {**node, "anyOf": [{"allOf": rest}, {"type": "null"}]}
    if node.pop("nullable", False) is True:
        return {"anyOf": [node, {"type": "null"}]}
    return node


class SpecValidator:
    """Validates JSON values against `#/components/schemas/<name>` of the OpenAI description."""

    def __init__(self, spec_path: Path) -> None:
        import jsonschema
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        with open(spec_path, encoding="utf-8") as fh:
            spec = yaml.load(fh, Loader=loader)
        self.schemas: dict[str, Any] = spec["components"]["schemas"]
        self._root = _modernise({"components": {"schemas": self.schemas}})
        # Deviation we keep on purpose: the real API has a `paused` status that the file's enum lacks.
        status = self._root["components"]["schemas"]["FineTuningJob"]["properties"]["status"]
        status["enum"] = [*status["enum"], "paused"]
        # Deviation we keep on purpose (docs/sandbox-differences.md): the real API sends `"error": {}` on a
        # job that has not failed, where the file allows only null or {code, message, param}.
        job_props = self._root["components"]["schemas"]["FineTuningJob"]["properties"]
        job_props["error"] = {"anyOf": [job_props["error"], {"type": "object", "maxProperties": 0}]}
        self._jsonschema = jsonschema
        self._cache: dict[str, Any] = {}

    def validate(self, name: str, value: Any) -> None:
        validator = self._cache.get(name)
        if validator is None:
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT202012

            resource = Resource(contents=self._root, specification=DRAFT202012)
            registry: Registry[Any] = Registry().with_resource("urn:openai", resource)
            schema = {"$ref": f"urn:openai#/components/schemas/{name}"}
            validator = self._jsonschema.Draft202012Validator(schema, registry=registry)
            self._cache[name] = validator
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        assert not errors, f"{name}: " + "; ".join(
            f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])


@pytest.fixture(scope="session")
def spec(openapi_spec_path: Path) -> SpecValidator:
    return SpecValidator(openapi_spec_path)
