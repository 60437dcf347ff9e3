"""Pagination: every page followed, bounded by max_pages, stopped when a cursor repeats."""

from __future__ import annotations

import httpx
import pytest

from ftops.providers import PaginationError

from .conftest import body_of, identity, job_json, upload


def pages_of(n_pages: int, per_page: int = 2):
    """A responder serving n_pages of jobs keyed by the `after` cursor."""
    ids = [f"ftjob-{i:03d}" for i in range(n_pages * per_page)]

    def respond(req: httpx.Request) -> httpx.Response:
        after = req.url.params.get("after")
        start = ids.index(after) + 1 if after else 0
        chunk = ids[start:start + per_page]
        return httpx.Response(200, json={"object": "list", "data": [job_json(i) for i in chunk],
                                         "has_more": start + per_page < len(ids)})
    return respond, ids


def test_all_pages_followed_in_order(make_provider):
    respond, ids = pages_of(3)
    p, script, _ = make_provider([respond])
    assert [j.id for j in p._list({})] == ids
    assert [r.url.params.get("after") for r in script.requests] == [None, "ftjob-001", "ftjob-003"]


def test_page_bound_is_an_error_not_an_infinite_loop(make_provider):
    counter = {"n": 0}

    def endless(req: httpx.Request) -> httpx.Response:
        counter["n"] += 1
        return httpx.Response(200, json={"object": "list", "has_more": True,
                                         "data": [job_json(f"ftjob-{counter['n']}")]})
    p, script, _ = make_provider([endless], max_pages=7)
    with pytest.raises(PaginationError) as ei:
        p._list({})
    assert len(script.requests) == 7
    assert "7 pages" in str(ei.value)


def test_repeating_cursor_stops(make_provider):
    same = httpx.Response(200, json={"object": "list", "has_more": True, "data": [job_json("ftjob-x")]})
    p, script, _ = make_provider([same], max_pages=1000)
    with pytest.raises(PaginationError) as ei:
        p._list({})
    assert len(script.requests) == 2
    assert "repeated" in str(ei.value)


def test_list_jobs_sends_metadata_filter_and_filters_client_side(make_provider):
    body = {"object": "list", "has_more": False, "data": [
        job_json("ftjob-a", metadata={"ftops_model": "bot", "team": "cx"}),
        job_json("ftjob-b", metadata={"ftops_model": "other"}),  # a server that ignores the filter
        job_json("ftjob-c", metadata=None),
    ]}
    p, script, _ = make_provider([httpx.Response(200, json=body)])
    jobs = p._list({"ftops_model": "bot", "team": "cx"})
    assert [j.id for j in jobs] == ["ftjob-a"]
    q = script.requests[0].url.params
    assert q["metadata[ftops_model]"] == "bot" and q["metadata[team]"] == "cx"


def test_list_files_passes_purpose_and_paginates(make_provider):
    def respond(req: httpx.Request) -> httpx.Response:
        assert req.url.params["purpose"] == "fine-tune"
        after = req.url.params.get("after")
        data = [{"id": "file-2" if after else "file-1", "object": "file", "filename": "a.jsonl", "bytes": 3,
                 "purpose": "fine-tune", "created_at": 1, "status": "processed"}]
        return httpx.Response(200, json={"object": "list", "data": data, "has_more": not after,
                                         "first_id": data[0]["id"], "last_id": data[0]["id"]})
    p, script, _ = make_provider([respond])
    assert [f.id for f in p.list_files()] == ["file-1", "file-2"]
    assert len(script.requests) == 2


def test_list_events_with_limit_reads_one_page(make_provider):
    ev = {"object": "fine_tuning.job.event", "id": "ftevent-1", "created_at": 1, "level": "info",
          "message": "hi", "type": "message"}
    p, script, _ = make_provider([httpx.Response(200, json={"object": "list", "data": [ev], "has_more": True})])
    assert [e.id for e in p.list_events("ftjob-1", limit=1)] == ["ftevent-1"]
    assert len(script.requests) == 1 and script.requests[0].url.params["limit"] == "1"
