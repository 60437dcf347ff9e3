"""Retry policy: Retry-After forms, bounded attempts and total wait, writes never repeated when ambiguous."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from ftops.providers import (
    APIStatusError,
    RateLimitError,
    ServerError,
    TransportError,
    parse_retry_after,
)

from .conftest import body_of, err, identity, job_json, upload

OK_JOB = httpx.Response(200, json=job_json())


def test_parse_retry_after_forms():
    h = httpx.Headers
    assert parse_retry_after(h({"retry-after": "7"})) == 7.0
    assert parse_retry_after(h({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(h({"retry-after": date}), now=lambda: 1_000_000.0) == pytest.approx(30.0)
    assert parse_retry_after(h({"retry-after": date}), now=lambda: 2_000_000.0) == 0.0
    assert parse_retry_after(h({"retry-after": "soon"})) is None
    assert parse_retry_after(h({"retry-after": "-3"})) is None
    assert parse_retry_after(h({})) is None


@pytest.mark.parametrize("headers,expected", [
    ({"retry-after": "3"}, 3.0),
    ({"retry-after-ms": "250"}, 0.25),
])
def test_get_honours_retry_after(make_provider, headers, expected):
    p, script, sleeps = make_provider([err(429, headers=headers), err(503, headers=headers), OK_JOB])
    assert p.get_job("ftjob-1").id == "ftjob-1"
    assert sleeps == [expected, expected]
    assert len(script.requests) == 3


def test_get_honours_retry_after_http_date(make_provider):
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    p, _, sleeps = make_provider([err(429, headers={"retry-after": date}), OK_JOB])
    p.get_job("ftjob-1")
    assert len(sleeps) == 1 and 25 <= sleeps[0] <= 31


def test_attempts_are_bounded_with_jittered_backoff(make_provider):
    p, script, sleeps = make_provider([err(503)], max_retries=4, backoff_base=0.5, backoff_cap=2.0)
    with pytest.raises(ServerError) as ei:
        p.get_job("ftjob-1")
    assert ei.value.retryable and not ei.value.maybe_committed
    assert len(script.requests) == 5 and len(sleeps) == 4
    for i, s in enumerate(sleeps):  # full jitter: uniform(0, min(cap, base * 2**i))
        assert 0 <= s <= min(2.0, 0.5 * 2 ** i)
    assert len(set(sleeps)) > 1


def test_total_wait_is_bounded_and_rate_limit_carries_retry_after(make_provider):
    p, script, sleeps = make_provider([err(429, headers={"retry-after": "40"})], max_retry_wait=60)
    with pytest.raises(RateLimitError) as ei:
        p._list({})
    assert sleeps == [40.0]  # a second 40 s wait would exceed the 60 s budget
    assert len(script.requests) == 2
    assert ei.value.retry_after == 40.0
    assert "40" in ei.value.to_diagnostic().hint


def test_get_retries_read_timeout(make_provider):
    p, script, sleeps = make_provider([httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset"), OK_JOB])
    assert p.get_job("ftjob-1").id == "ftjob-1"
    assert len(script.requests) == 3 and len(sleeps) == 2


def test_get_transport_error_after_retries_is_not_maybe_committed(make_provider):
    p, _, _ = make_provider([httpx.ReadTimeout("slow")], max_retries=1)
    with pytest.raises(TransportError) as ei:
        p.get_job("ftjob-1")
    assert not ei.value.maybe_committed and ei.value.retryable


@pytest.mark.parametrize("failure", [
    httpx.ReadTimeout("slow"),
    httpx.RemoteProtocolError("Server disconnected without sending a response."),
    httpx.ReadError("connection reset"),
    httpx.WriteTimeout("slow write"),
])
def test_create_job_lost_response_is_not_retried(make_provider, failure):
    p, script, sleeps = make_provider([failure, OK_JOB])
    with pytest.raises(TransportError) as ei:
        p.create_job({"model": "m", "training_file": "f"}, identity(), {})
    assert ei.value.maybe_committed and not ei.value.retryable
    assert len(script.requests) == 1 and sleeps == []
    assert "may have been applied" in str(ei.value)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_create_job_5xx_is_maybe_committed_and_not_retried(make_provider, status):
    p, script, _ = make_provider([err(status), OK_JOB])
    with pytest.raises(ServerError) as ei:
        p.create_job({"model": "m", "training_file": "f"}, identity(), {})
    assert ei.value.maybe_committed and not ei.value.retryable
    assert len(script.requests) == 1


def test_create_job_retried_when_certainly_not_committed(make_provider):
    p, script, sleeps = make_provider([httpx.ConnectError("refused"),
                                       err(429, headers={"retry-after": "2"}), OK_JOB])
    assert p.create_job({"model": "m", "training_file": "f"}, identity(), {}).id == "ftjob-1"
    assert len(script.requests) == 3
    assert sleeps[1] == 2.0


def test_create_job_long_rate_limit_stops_without_waiting(make_provider):
    p, script, sleeps = make_provider([err(429, headers={"retry-after": "3600"}), OK_JOB], max_retry_wait=60)
    with pytest.raises(RateLimitError) as ei:
        p.create_job({"model": "m", "training_file": "f"}, identity(), {})
    assert ei.value.retry_after == 3600.0 and not ei.value.maybe_committed
    assert len(script.requests) == 1 and sleeps == []


def test_connect_error_is_not_maybe_committed(make_provider):
    p, script, _ = make_provider([httpx.ConnectError("refused")], max_retries=2)
    with pytest.raises(TransportError) as ei:
        p.create_job({"model": "m", "training_file": "f"}, identity(), {})
    assert not ei.value.maybe_committed
    assert len(script.requests) == 3


def test_insufficient_quota_is_not_retried(make_provider):
    p, script, sleeps = make_provider([err(429, "You exceeded your current quota", code="insufficient_quota")])
    with pytest.raises(RateLimitError) as ei:
        p._list({})
    assert not ei.value.retryable and "billing" in ei.value.to_diagnostic().hint
    assert len(script.requests) == 1 and sleeps == []


def test_x_should_retry_false_is_honoured(make_provider):
    p, script, _ = make_provider([err(503, headers={"x-should-retry": "false"})])
    with pytest.raises(ServerError):
        p.get_job("ftjob-1")
    assert len(script.requests) == 1


def test_408_retried_for_reads_only(make_provider):
    p, script, _ = make_provider([err(408), OK_JOB])
    assert p.get_job("ftjob-1").id == "ftjob-1" and len(script.requests) == 2
    p, script, _ = make_provider([err(408), OK_JOB])
    with pytest.raises(APIStatusError):
        p.create_job({"model": "m", "training_file": "f"}, identity(), {})
    assert len(script.requests) == 1
