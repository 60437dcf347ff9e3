"""Long work says what it is doing (issue 9, item 13): progress on a terminal, retries with -v, nothing
animated without a terminal."""

from __future__ import annotations

import io
import socket

import pytest

import ftops.cli
import ftops.datasets.check
import ftops.datasets.hashing
from ftops.datasets import check_dataset
from ftops.datasets.hashing import sha256_file
from ftops.render.progress import ERASE, ProgressLine
from tests.e2e.conftest import Project


@pytest.fixture
def small_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read the quickstart's 19 kB in many steps, as a 73 MB file is read in 8 MB ranges."""
    monkeypatch.setattr(ftops.datasets.check, "RANGE", 2048)
    monkeypatch.setattr(ftops.datasets.hashing, "_BLOCK", 2048)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ftops.cli, "_stderr_is_tty", lambda: True)
    monkeypatch.setattr(ftops.cli, "PROGRESS_DELAY", 0.0)
    monkeypatch.setattr(ftops.cli, "PROGRESS_INTERVAL", 0.0)


def test_reads_report_progress_up_to_the_total(project: Project, small_steps: None) -> None:
    path = project.root / "data" / "train.jsonl"
    size = path.stat().st_size
    seen: list[tuple[int, int]] = []
    sha256_file(path, lambda d, t: seen.append((d, t)))
    assert len(seen) > 5 and seen[-1] == (size, size) and seen == sorted(seen)
    seen.clear()
    check_dataset(path, on_progress=lambda d, t: seen.append((d, t)), workers=1)
    assert len(seen) > 5 and seen[-1] == (size, size) and seen == sorted(seen)


@pytest.mark.usefixtures("small_steps", "terminal")
def test_plan_on_a_terminal_shows_hashing_and_checking(project: Project) -> None:
    r = project.ftops("plan")
    assert r.code == 0, r.err
    assert f"{ERASE}hashing data/train.jsonl  [" in r.err and f"{ERASE}checking data/train.jsonl  [" in r.err
    assert r.err.rstrip("\n").endswith(ERASE) or ERASE not in r.err.splitlines()[-1]  # erased when done
    assert ERASE not in r.out


@pytest.mark.usefixtures("terminal")
def test_small_uploads_show_progress_on_a_terminal(project: Project) -> None:
    r = project.ftops("apply", "--auto-approve")
    assert r.code == 0, r.err
    assert f"{ERASE}uploading data/train.jsonl  [" in r.err


@pytest.mark.usefixtures("small_steps")
def test_nothing_is_animated_without_a_terminal(project: Project) -> None:
    r = project.ftops("apply", "--auto-approve")
    assert r.code == 0 and "\r" not in r.err and "\x1b" not in r.err


def test_progress_line_waits_throttles_and_erases() -> None:
    t = [0.0]
    out = io.StringIO()
    line = ProgressLine(out, enabled=True, delay=0.3, interval=0.1, clock=lambda: t[0])
    line.update("a", "hashing x", 1, 10)
    assert out.getvalue() == ""  # a step shorter than the delay shows nothing
    t[0] = 0.5
    line.update("a", "hashing x", 5, 10)
    assert out.getvalue().endswith("hashing x  [##########          ]  50%  5 B / 10 B")
    t[0] = 0.55
    line.update("a", "hashing x", 6, 10)
    assert "60%" not in out.getvalue()  # at most ten redraws a second
    line.clear()
    assert out.getvalue().endswith(ERASE) and not line.visible
    off = io.StringIO()
    ProgressLine(off, enabled=False, delay=0).update("a", "x", now=True)
    assert off.getvalue() == ""


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def _unreachable_provider(p: Project) -> None:
    p.edit("  type: sandbox", f"  type: openai\n  base_url: http://127.0.0.1:{_closed_port()}/v1\n"
                              "  max_retry_wait: 0.5")
    p.edit("  time_scale: 600", "")


def test_retries_are_one_line_each_with_verbose(project: Project) -> None:
    _unreachable_provider(project)
    r = project.subprocess("-v", "plan", env={"OPENAI_API_KEY": "sk-test"})
    assert r.code == 1 and "error[provider.transport_error]" in r.err
    retries = [ln for ln in r.err.splitlines() if "retrying GET /files" in ln]
    assert len(retries) >= 1 and "\r" not in r.err


@pytest.mark.usefixtures("terminal")
def test_retries_show_on_the_terminal_without_verbose(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    _unreachable_provider(project)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    r = project.ftops("plan")
    assert r.code == 1
    assert f"{ERASE}no answer yet: retrying GET /files" in r.err
