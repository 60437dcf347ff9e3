"""Azure dialect on the wire, and the providers package's import rule."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest

from ftops.providers import AuthenticationError, AzureOpenAIProvider, azure_base_url

from .conftest import Script, err, job_json

PKG = Path(__file__).resolve().parents[2] / "ftops" / "providers"


def test_azure_uses_api_key_header_and_api_version():
    script = Script([httpx.Response(200, json={"object": "list", "data": [job_json()], "has_more": False}),
                     err(401, "Access denied due to invalid subscription key")])
    client = httpx.Client(transport=httpx.MockTransport(script), base_url=azure_base_url("myres"))
    p = AzureOpenAIProvider(client, api_key="azkey-1234567890", api_version="2025-04-01-preview",
                            max_retries=0)
    assert p.endpoint == "https://myres.openai.azure.com/openai/v1"
    assert not p.capabilities.metadata_filter and p.capabilities.max_suffix_chars == 40
    jobs = p.list_jobs({"ftops_model": "x"})  # no server-side filter: filtered client-side
    assert jobs == []
    req = script.requests[0]
    assert req.headers["api-key"] == "azkey-1234567890"
    assert "authorization" not in req.headers
    assert req.url.params["api-version"] == "2025-04-01-preview"
    assert "metadata[ftops_model]" not in req.url.params
    assert req.url.path == "/openai/v1/fine_tuning/jobs"
    with pytest.raises(AuthenticationError) as ei:
        p.get_job("ftjob-1")
    assert "AZURE_OPENAI_API_KEY" in str(ei.value) and "AZURE_OPENAI_API_KEY" in ei.value.to_diagnostic().hint


def test_azure_base_url_accepts_full_url():
    assert azure_base_url("https://x.openai.azure.com/openai/v1/") == "https://x.openai.azure.com/openai/v1"


def test_providers_import_only_diagnostics():
    """STYLE.md module map: providers may import ftops.diagnostics and ftops.datasets (conversion), nothing
    else of ftops."""
    for py in PKG.rglob("*.py"):
        tree = ast.parse(py.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                if n == "ftops" or n.startswith("ftops."):
                    assert n in ("ftops.diagnostics", "ftops.datasets.convert") or n.startswith("ftops.providers"), \
                        f"{py.name} imports {n}"
