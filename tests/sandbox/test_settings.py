"""Settings and fault strings: parsed strictly, with diagnostics a person can act on."""

from __future__ import annotations

import pytest

from ftops.diagnostics import FtopsError
from ftops.sandbox import FaultConfig, SandboxSettings


def test_parse_full_fault_string() -> None:
    c = FaultConfig.parse("error_rate=0.2,rate_limit_rate=0.1,lost_response_rate=0.1,latency_ms=50,seed=7")
    assert c == FaultConfig(error_rate=0.2, rate_limit_rate=0.1, lost_response_rate=0.1, latency_ms=50, seed=7)
    assert c.enabled
    assert FaultConfig.parse("") == FaultConfig() and not FaultConfig().enabled


@pytest.mark.parametrize("text, hint", [
    ("error_rate", "e.g. error_rate=0.2,latency_ms=50,seed=7"), ("eror_rate=0.1", "did you mean `error_rate`?"), ("error_rate=2", ""),
    ("error_rate=abc", ""), ("latency_ms=-1", ""), ("retry_after_ms=-5", ""), ("seed=1.5", ""), ("error_rate=0.1,error_rate=0.2", ""),
    ("error_rate=0.7,rate_limit_rate=0.5", ""),
])
def test_bad_fault_strings(text: str, hint: str) -> None:
    with pytest.raises(FtopsError) as err:
        FaultConfig.parse(text)
    (diag,) = err.value.diagnostics
    assert diag.code == "sandbox.bad_faults"
    assert diag.hint == hint


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTOPS_SANDBOX_TIME_SCALE", "60")
    monkeypatch.setenv("FTOPS_SANDBOX_FAULTS", "error_rate=0.5,seed=1")
    s = SandboxSettings.from_env()
    assert s.time_scale == 60.0 and s.faults.error_rate == 0.5
    s = SandboxSettings.from_env(time_scale=5.0, faults="latency_ms=1", max_running_jobs=1, api_keys=None)
    assert s.time_scale == 5.0 and s.faults == FaultConfig(latency_ms=1) and s.max_running_jobs == 1
    assert s.api_keys is None
    monkeypatch.setenv("FTOPS_SANDBOX_TIME_SCALE", "fast")
    with pytest.raises(FtopsError) as err:
        SandboxSettings.from_env()
    assert err.value.diagnostics[0].code == "sandbox.bad_time_scale"
    with pytest.raises(FtopsError):
        SandboxSettings(time_scale=0)
