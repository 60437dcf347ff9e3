"""Report cache, HashCache (warm calls read no bytes), unreadable paths, worker processes."""

from __future__ import annotations

import builtins
import io
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ftops.datasets.check as check_mod
from ftops.datasets import HashCache, check_dataset, cross_check, sha256_file
from ftops.diagnostics import FtopsError
from tests.datasets.conftest import WriteLines, chat


@pytest.fixture
def no_reads_of(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], list[str]]:
    """Make any open() of the given file fail the test; returns the list of attempted opens."""

    def _guard(path: Path) -> list[str]:
        target = os.path.realpath(path)
        attempts: list[str] = []
        real_open = builtins.open

        def guarded(file: Any, *a: Any, **kw: Any) -> Any:
            if isinstance(file, (str, os.PathLike)) and os.path.realpath(file) == target:
                attempts.append(str(file))
                raise AssertionError(f"dataset bytes read: {file}")
            return real_open(file, *a, **kw)

        monkeypatch.setattr(builtins, "open", guarded)
        monkeypatch.setattr(io, "open", guarded)
        return attempts

    return _guard


@pytest.mark.needs_tiktoken
def test_cache_hit_reads_no_bytes(valid_chat: Callable[..., Path], tmp_path: Path,
                                  no_reads_of: Callable[[Path], list[str]]) -> None:
    p = valid_chat("", at=3)
    cache = tmp_path / "cache"
    cold = check_dataset(p, cache_dir=cache, base_model="gpt-4o-mini-2024-07-18")
    assert list((cache / "datasets").glob("*.json"))
    attempts = no_reads_of(p)
    warm = check_dataset(p, cache_dir=cache, sha256=cold.sha256, base_model="gpt-4o-mini-2024-07-18")
    assert attempts == []
    assert warm == cold


@pytest.mark.needs_tiktoken
def test_cache_key_includes_method_and_encoding(valid_chat: Callable[..., Path], tmp_path: Path) -> None:
    p = valid_chat()
    cache = tmp_path / "cache"
    a = check_dataset(p, cache_dir=cache)
    b = check_dataset(p, cache_dir=cache, base_model="gpt-3.5-turbo-0125")
    c = check_dataset(p, cache_dir=cache, method="dpo")
    assert a.stats.encoding == "o200k_base" and b.stats.encoding == "cl100k_base"
    assert a.valid and not c.valid
    assert len(list((cache / "datasets").glob("*.json"))) == 3


def test_changed_file_is_rechecked(valid_chat: Callable[..., Path], tmp_path: Path) -> None:
    p = valid_chat()
    cache = tmp_path / "cache"
    assert check_dataset(p, cache_dir=cache).valid
    with open(p, "a") as f:
        f.write("\n")
    r = check_dataset(p, cache_dir=cache)  # no sha256 given: hashed, so the change is seen
    assert [i.code for i in r.errors] == ["blank_line"]


def test_corrupt_cache_entry_is_ignored(valid_chat: Callable[..., Path], tmp_path: Path) -> None:
    p = valid_chat()
    cache = tmp_path / "cache"
    r = check_dataset(p, cache_dir=cache)
    for f in (cache / "datasets").glob("*.json"):
        f.write_text("{not json")
    assert check_dataset(p, cache_dir=cache, sha256=r.sha256) == r


def test_hash_cache_warm_reads_no_bytes(valid_chat: Callable[..., Path], tmp_path: Path,
                                        no_reads_of: Callable[[Path], list[str]]) -> None:
    p = valid_chat()
    cf = tmp_path / "hashes.json"
    hc = HashCache(cf)
    digest = hc.sha256(p)
    assert digest == sha256_file(p)
    hc.save()
    attempts = no_reads_of(p)
    assert HashCache(cf).sha256(p) == digest
    assert attempts == []


def test_hash_cache_sees_changes(valid_chat: Callable[..., Path], tmp_path: Path) -> None:
    p = valid_chat()
    hc = HashCache(tmp_path / "h.json")
    before = hc.sha256(p)
    st = p.stat()
    data = p.read_bytes()
    p.write_bytes(data.replace(b"question", b"QUESTION"))  # same size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert hc.sha256(p) != before


def test_hash_cache_save_is_atomic_and_merges(valid_chat: Callable[..., Path], tmp_path: Path) -> None:
    a = valid_chat(name="a.jsonl")
    b = valid_chat(name="b.jsonl", at=2, bad=chat(999))
    cf = tmp_path / "h.json"
    h1, h2 = HashCache(cf), HashCache(cf)
    h1.sha256(a)
    h2.sha256(b)
    threads = [threading.Thread(target=h.save) for h in (h1, h2) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = json.loads(cf.read_text())
    assert len(data["entries"]) == 2
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(FtopsError) as e:
        check_dataset(tmp_path / "missing.jsonl")
    assert e.value.diagnostics[0].code == "dataset.not_found"
    with pytest.raises(FtopsError) as e:
        check_dataset(tmp_path)
    assert e.value.diagnostics[0].code == "dataset.not_a_file"
    if os.path.exists("/dev/null"):
        with pytest.raises(FtopsError) as e:
            check_dataset("/dev/null")
        assert e.value.diagnostics[0].code == "dataset.not_a_file"
    with pytest.raises(FtopsError) as e:
        HashCache(tmp_path / "h.json").sha256(tmp_path / "missing.jsonl")
    assert e.value.diagnostics[0].code == "dataset.not_found"


@pytest.mark.parametrize("start_method", ["fork", "forkserver", "spawn"])
def test_worker_processes_give_the_same_report(write_lines: WriteLines, monkeypatch: pytest.MonkeyPatch,
                                               start_method: str) -> None:
    lines: list[Any] = [chat(i) for i in range(400)]
    lines[3] = ""
    lines[150] = chat(7)  # duplicate of line 8, in another range
    lines[260] = '{"messages": ['
    lines[300] = chat(300, system=False)
    lines[390] = {"messages": [{"role": "user", "content": "mail a@b.example.com"},
                               {"role": "assistant", "content": "ok"}]}
    p = write_lines(lines)
    one = check_dataset(p, workers=1)
    monkeypatch.setattr(check_mod, "RANGE", 4096)
    monkeypatch.setattr(check_mod, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(check_mod, "PARALLEL_MIN_BYTES_FORK", 0)
    monkeypatch.setattr(check_mod, "_start_method", lambda: start_method)
    assert len(check_mod._ranges(str(p), p.stat().st_size, 0)) > 5
    many = check_dataset(p, workers=2)
    assert many == one
    assert [(i.line, i.code) for i in one.errors] == [(4, "blank_line"), (261, "invalid_json")]
    assert {(i.line, i.code) for i in one.warnings} >= {
        (151, "duplicate_example"), (301, "missing_system_message"), (391, "sensitive_email")}


def test_cross_check(write_lines: WriteLines) -> None:
    train = check_dataset(write_lines([chat(i) for i in range(60)], name="train.jsonl"))
    val_lines: list[Any] = [chat(1000 + i) for i in range(12)]
    val_lines[4] = chat(17)
    val = check_dataset(write_lines(val_lines, name="val.jsonl"))
    issues = cross_check(train, val)
    assert [(i.line, i.code) for i in issues] == [(5, "in_training_and_validation")]
    assert "line 18" in issues[0].message
    assert [i.code for i in cross_check(train, train)] == ["in_training_and_validation"]


def test_cross_check_cached(write_lines: WriteLines, tmp_path: Path,
                            no_reads_of: Callable[[Path], list[str]]) -> None:
    train_p = write_lines([chat(i) for i in range(60)], name="train.jsonl")
    val_p = write_lines([chat(3)] + [chat(1000 + i) for i in range(11)], name="val.jsonl")
    train, val = check_dataset(train_p), check_dataset(val_p, purpose="validation")
    cold = cross_check(train, val, cache_dir=tmp_path / "c")
    assert [(i.line, i.code) for i in cold] == [(1, "in_training_and_validation")]
    no_reads_of(train_p)
    no_reads_of(val_p)
    assert cross_check(train, val, cache_dir=tmp_path / "c") == cold


def test_an_in_place_edit_that_restores_size_mtime_and_inode_is_still_seen(tmp_path) -> None:
    """ctime is part of the stat key: no user call can set it back (issue: a fake key slipped through)."""
    import os
    import time

    from ftops.datasets import HashCache
    from ftops.datasets.hashing import sha256_file

    f = tmp_path / "d.jsonl"
    f.write_bytes(b'{"a": 1}\n')
    cache = HashCache(tmp_path / "hashes.json")
    first = cache.sha256(f)
    st = os.stat(f)
    time.sleep(0.01)
    with open(f, "r+b") as fh:  # same size, same inode
        fh.write(b'{"a": 2}\n')
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime restored
    assert cache.sha256(f) == sha256_file(f) != first
