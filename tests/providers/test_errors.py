"""Status -> exception mapping, messages, and the API key never leaking (MockTransport edge cases)."""

from __future__ import annotations

import logging

import httpx
import pytest

from ftops.providers import (
    APIStatusError,
    AuthenticationError,
    AuthError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
    TransportError,
)

from .conftest import API_KEY, body_of, err, identity, job_json, upload


@pytest.mark.parametrize("status,cls,diag", [
    (400, BadRequestError, "provider.bad_request"),
    (401, AuthenticationError, "provider.auth_failed"),
    (403, PermissionDeniedError, "provider.permission_denied"),
    (404, NotFoundError, "provider.not_found"),
    (409, ConflictError, "provider.conflict"),
    (422, BadRequestError, "provider.bad_request"),
    (429, RateLimitError, "provider.rate_limited"),
    (500, ServerError, "provider.server_error"),
    (502, ServerError, "provider.server_error"),
    (503, ServerError, "provider.server_error"),
    (418, APIStatusError, "provider.api_error"),
])
def test_status_maps_to_exception_class(make_provider, status, cls, diag):
    p, script, _ = make_provider([err(status, "server says no", param="training_file", code="x")],
                                 max_retries=0)
    with pytest.raises(ProviderError) as ei:
        p.get_job("ftjob-1")
    e = ei.value
    assert type(e) is cls
    assert e.status_code == status
    assert e.param == "training_file" and e.code == "x"
    assert e.to_diagnostic().code == diag
    assert "server says no" in str(e) and "training_file" in str(e)
    assert len(script.requests) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_never_not_found_and_never_retried(make_provider, status):
    p, script, sleeps = make_provider([err(status)])
    with pytest.raises(AuthError) as ei:
        p._list({})
    assert not isinstance(ei.value, NotFoundError)
    assert not ei.value.retryable
    assert "OPENAI_API_KEY" in str(ei.value)
    assert len(script.requests) == 1 and sleeps == []


def test_bad_request_names_param_and_hint(make_provider):
    p, _, _ = make_provider([err(400, "Invalid suffix", param="suffix", code="invalid_value")])
    with pytest.raises(BadRequestError) as ei:
        p.create_job({"model": "m", "training_file": "f"}, identity(), {})
    assert "(param: suffix)" in str(ei.value)
    assert ei.value.to_diagnostic().hint == "check `suffix`"


def test_non_json_error_body_is_handled(make_provider):
    html = httpx.Response(502, text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                          headers={"content-type": "text/html"})
    p, script, _ = make_provider([html], max_retries=2)
    with pytest.raises(ServerError) as ei:
        p.get_job("ftjob-1")
    assert "502 Bad Gateway" in str(ei.value)
    assert len(script.requests) == 3  # GET: retried


def test_unexpected_success_body_is_a_provider_error(make_provider):
    p, _, _ = make_provider([httpx.Response(200, text="not json")])
    with pytest.raises(APIStatusError):
        p.get_job("ftjob-1")


def test_unknown_fields_ignored_and_status_open(make_provider):
    p, _, _ = make_provider([httpx.Response(200, json=job_json(status="exploring_the_universe",
                                                                brand_new_field={"x": 1}))])
    job = p.get_job("ftjob-1")
    assert job.status == "exploring_the_universe"


def test_request_id_is_kept(make_provider):
    p, _, _ = make_provider([err(404, headers={"x-request-id": "req_123"})])
    with pytest.raises(NotFoundError) as ei:
        p.get_job("nope")
    assert ei.value.request_id == "req_123"
    assert "req_123" in ei.value.to_diagnostic().detail


def test_api_key_never_in_logs_or_errors(make_provider, caplog):
    """Servers echo (masked or whole) keys; debug logs and every error string must not carry it."""
    echo = err(401, f"Incorrect API key provided: {API_KEY}. You can find your key at ...")
    p, script, _ = make_provider([
        echo,
        httpx.ReadTimeout("The read operation timed out"),
        err(500, f"internal error for {API_KEY[:10]}***{API_KEY[-4:]}"),
    ], max_retries=0)
    caplog.set_level(logging.DEBUG, logger="ftops")
    errors: list[ProviderError] = []
    for _ in range(3):
        with pytest.raises(ProviderError) as ei:
            p.create_job({"model": "m", "training_file": "f"}, identity(), {})
        errors.append(ei.value)
    assert [type(e) for e in errors] == [AuthenticationError, TransportError, ServerError]
    assert script.requests[0].headers["authorization"] == f"Bearer {API_KEY}"  # it was sent...
    assert isinstance(errors[1].__cause__, httpx.ReadTimeout)  # cause chained
    assert errors[1].maybe_committed
    texts = [caplog.text] + [str(e) for e in errors] + [repr(e) for e in errors] + [
        repr(e.to_diagnostic()) for e in errors]
    for t in texts:  # ...and never written anywhere
        assert API_KEY not in t
        assert API_KEY[10:] not in t
    assert "POST /fine_tuning/jobs" in caplog.text  # logs do exist


def test_missing_key_for_real_provider_is_refused():
    from ftops.providers import MissingAPIKeyError, OpenAIProvider
    with pytest.raises(MissingAPIKeyError) as ei:
        OpenAIProvider.from_settings("https://api.openai.com/v1", None)
    assert ei.value.to_diagnostic().code == "provider.missing_api_key"
