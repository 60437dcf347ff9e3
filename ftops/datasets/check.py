"""check_dataset: stream a JSONL dataset once, validate it, count tokens, cache the report.

The file is cut into byte ranges at line boundaries. Small files are checked in this process;
large ones in worker processes (one per core), because parsing, validation and tokenization
are all CPU-bound and a process per core scales where threads would fight over the GIL.
Each worker reads its range in blocks, so memory stays flat whatever the file size.
Results are cached under cache_dir keyed by the file's sha256, so an unchanged dataset is
never validated or tokenized twice.
"""

from __future__ import annotations

import os
import sys
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path

from ftops.datasets.formats import (
    MAX_ISSUES_PER_CODE,
    Aggregate,
    ExampleChecker,
    RangeResult,
    _decode,
    detect_format,
)
from ftops.datasets.hashing import ProgressCallback, stat_dataset, write_cache
from ftops.datasets.models import DatasetIssue, DatasetReport, DatasetStats
from ftops.datasets.tokens import (
    APPROXIMATE_HINT,
    approximate_tokens_message,
    encoding_name_for,
    is_legacy_completion_model,
    load_encoding,
    token_limit_for,
)

VALIDATOR_VERSION = "2"  # 2: secrets are errors; decoded strings are scanned
METHODS = ("supervised", "dpo", "reinforcement")
MAX_FILE_BYTES = 512 * 1024 * 1024  # /v1/files limit; larger files need the Uploads API
MAX_UPLOAD_BYTES = 8 * 1024 * 1024 * 1024  # Uploads API limit
MIN_EXAMPLES = 10
FEW_EXAMPLES = 50
BLOCK = 4 * 1024 * 1024  # read size inside a range
# Longest line buffered: 10 images of 10 MB as base64 data URLs plus text fit well below it.
MAX_LINE_BYTES = 256 * 1024 * 1024
RANGE = 8 * 1024 * 1024  # bytes per unit of parallel work (small enough to balance the tail)
# Smallest file checked by worker processes: forked workers start in milliseconds, while a
# forkserver or spawned worker first re-imports ftops (~1 s), which only pays off on big files.
PARALLEL_MIN_BYTES = int(os.environ.get("FTOPS_PARALLEL_MIN_BYTES", str(64 * 1024 * 1024)))
PARALLEL_MIN_BYTES_FORK = int(os.environ.get("FTOPS_PARALLEL_MIN_BYTES_FORK", str(8 * 1024 * 1024)))
BOM = b"\xef\xbb\xbf"
SMALL_DEDUP = 250_000  # examples up to which duplicates are found with a plain set


@dataclass(frozen=True)
class _Job:
    path: str
    start: int
    end: int
    fmt: str
    method: str
    encoding: str
    limit: int
    legacy_model: bool
    fast_hash: bool = True


def _iter_lines(path: str, start: int, end: int) -> Iterator[bytes | None]:
    """Lines (without b"\\n") of bytes [start, end); the last may lack a newline.

    Reads BLOCK bytes at a time; a line longer than a block is collected in pieces and joined
    once, so long lines (big data-URL images) cost linear time. A line longer than
    MAX_LINE_BYTES is not buffered: its bytes are skipped and None stands for it, so a file
    without newlines cannot exhaust memory.
    """
    with open(path, "rb") as f:
        f.seek(start)
        remaining = end - start
        pending: list[bytes] = []  # pieces of a line not yet ended
        pending_size = 0
        skipping = False  # inside an over-long line: drop bytes up to its b"\n"
        while remaining > 0:
            block = f.read(min(BLOCK, remaining))
            if not block:
                break
            remaining -= len(block)
            if skipping:
                nl = block.find(b"\n")
                if nl < 0:
                    continue
                yield None
                skipping = False
                block = block[nl + 1:]
                if not block:
                    continue
            cut = block.rfind(b"\n")
            if cut < 0:
                pending.append(block)
                pending_size += len(block)
                if pending_size > MAX_LINE_BYTES:
                    pending, pending_size, skipping = [], 0, True
                continue
            if pending:
                pending.append(block)
                block = b"".join(pending)
                cut = block.rfind(b"\n")
                pending, pending_size = [], 0
            if cut + 1 < len(block):
                pending.append(block[cut + 1:])
                pending_size = len(block) - cut - 1
            yield from block[:cut].split(b"\n")
        if skipping:
            yield None
        elif pending:
            yield b"".join(pending)


def _check_range(job: _Job) -> RangeResult:
    """Check one range; lines are numbered from 1 within the range."""
    checker = ExampleChecker(job.fmt, job.method, job.encoding, job.limit, legacy_model=job.legacy_model,
                             fast_hash=job.fast_hash)
    line = 0
    check_line = checker.check_line
    for line, raw in enumerate(_iter_lines(job.path, job.start, job.end), 1):
        if raw is None:
            checker.err(line, "line_too_long", f"line is longer than {MAX_LINE_BYTES // 2**20} MiB; "
                        "not checked", "split the example or shrink its images")
        else:
            check_line(raw, line)
    result = checker.finish()
    # Ranges end just after a b"\n" (except the file's last), so lines seen = b"\n" counted.
    result.lines = line
    return result


def _ranges(path: str, size: int, start: int) -> list[tuple[int, int]]:
    """Split [start, size) into ~RANGE byte ranges that each end just after a b"\\n"."""
    out: list[tuple[int, int]] = []
    with open(path, "rb") as f:
        pos = start
        while pos < size:
            target = pos + RANGE
            if target >= size:
                out.append((pos, size))
                break
            f.seek(target)
            while True:
                probe = f.read(65536)
                if not probe:
                    target = size
                    break
                nl = probe.find(b"\n")
                if nl >= 0:
                    target += nl + 1
                    break
                target += len(probe)
            out.append((pos, target))
            pos = target
    return out


def _first_example(path: str, method: str, max_lines: int = 1000) -> tuple[str, int]:
    """Format of the file from its first JSON-object line, and that line (0 when none).

    Blank and unparseable lines before it are skipped (they get their own errors), so one
    truncated first line does not turn every later example into a format mismatch.
    """
    for line, raw in enumerate(_iter_lines(path, 0, 1 << 62), 1):
        if line > max_lines:
            break
        if raw is None:
            continue
        if line == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]
        if not raw.strip():
            continue
        try:
            obj = _decode(raw.decode("utf-8"))
        except ValueError:
            continue
        if type(obj) is dict:
            return detect_format(obj, method), line
    return "unknown", 0


def _cache_file(cache_dir: Path, sha256: str, method: str, encoding: str, limit: int,
                uploads_api: bool, purpose: str) -> Path:
    key = f"{sha256}-{method}-{encoding}-{limit}-{int(uploads_api)}-{purpose}-v{VALIDATOR_VERSION}"
    return Path(cache_dir) / "datasets" / f"{key}.json"


def _read_cached(path: Path) -> DatasetReport | None:
    try:
        return DatasetReport.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None


def _write_cached(path: Path, report: DatasetReport) -> None:
    write_cache(path, report.model_dump_json())


def check_dataset(path: str | Path, *, method: str = "supervised", base_model: str | None = None,
                  cache_dir: Path | None = None, sha256: str | None = None,
                  uploads_api: bool = False, workers: int | None = None,
                  purpose: str = "training", on_progress: ProgressCallback | None = None) -> DatasetReport:
    """Validate one dataset file and count its tokens; never raises for bad content.

    `sha256`, when given, is trusted: with `cache_dir` a warm call then reads no dataset bytes.
    `purpose="validation"` drops the minimum-example rules, which apply to training files only.
    `uploads_api=True` means the file will go through the multipart Uploads API (up to 8 GB)
    rather than /v1/files (512 MB). `workers` caps worker processes (default: one per core).
    `on_progress(bytes_checked, bytes_total)` follows validation (after each range; not on a cache hit).
    Raises FtopsError (dataset.not_found / dataset.not_a_file) only for unreadable paths.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if purpose not in ("training", "validation"):
        raise ValueError(f"purpose must be 'training' or 'validation', got {purpose!r}")
    p = Path(path)
    st = stat_dataset(p)
    encoding = encoding_name_for(base_model)
    limit = token_limit_for(base_model) if base_model else 65_536
    if st.st_size > MAX_UPLOAD_BYTES:
        # Beyond every upload path: nothing to gain from reading (or hashing) it.
        return _too_large_report(str(path), st.st_size, method, encoding, limit, sha256 or "")
    cache_path: Path | None = None
    if cache_dir is not None:
        if sha256 is None:
            from ftops.datasets.hashing import sha256_file

            sha256 = sha256_file(p, on_progress)
        cache_path = _cache_file(Path(cache_dir), sha256, method, encoding, limit, uploads_api, purpose)
        cached = _read_cached(cache_path)
        if cached is not None:
            return cached.model_copy(update={"path": str(path)})
    report = _validate(str(p), st.st_size, method, base_model, encoding, limit, sha256, uploads_api, workers,
                       purpose, on_progress)
    if cache_path is not None and not report.stats.approximate:
        # Estimated counts are not cached: the next run may have the encoding and count exactly.
        _write_cached(cache_path, report)
    return report


def _too_large_report(path: str, size: int, method: str, encoding: str, limit: int,
                      sha256: str) -> DatasetReport:
    """Report for a file over the Uploads API limit; its bytes are not read (sha256 may be "")."""
    issue = DatasetIssue(line=None, code="file_too_large",
                         message=f"file is {size / 2**30:.1f} GiB; the limit is "
                                 f"{MAX_UPLOAD_BYTES / 2**30:.0f} GiB even with the Uploads API; not checked",
                         hint="split it into smaller files")
    return DatasetReport(path=path, sha256=sha256, size=size, format="unknown", valid=False, errors=[issue],
                         warnings=[], stats=DatasetStats(encoding=encoding, token_limit=limit), method=method)


class _Hasher(threading.Thread):
    """sha256 of the file in a background thread (hashlib releases the GIL on large blocks)."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.digest = ""
        self.exc: BaseException | None = None

    def run(self) -> None:
        try:
            from ftops.datasets.hashing import sha256_file

            self.digest = sha256_file(Path(self.path))
        except BaseException as exc:  # noqa: BLE001 - re-raised by the caller
            self.exc = exc


def _validate(path: str, size: int, method: str, base_model: str | None, encoding: str, limit: int,
              sha256: str | None, uploads_api: bool, workers: int | None, purpose: str,
              on_progress: ProgressCallback | None = None) -> DatasetReport:
    errors: list[DatasetIssue] = []
    warnings: list[DatasetIssue] = []
    start = 0
    with open(path, "rb") as f:
        head = f.read(len(BOM))
    if head == BOM:
        errors.append(DatasetIssue(line=1, code="bom", message="file starts with a UTF-8 byte-order mark",
                                   hint="save the file as UTF-8 without BOM"))
        start = len(BOM)
    max_bytes = MAX_UPLOAD_BYTES if uploads_api else MAX_FILE_BYTES
    if size > max_bytes:
        errors.append(DatasetIssue(
            line=None, code="file_too_large",
            message=f"file is {size / 2**20:.0f} MiB; the limit is {max_bytes / 2**20:.0f} MiB"
                    + ("" if uploads_api else " for /v1/files"),
            hint="" if uploads_api else "upload it with the multipart Uploads API (up to 8 GB)"))
    fmt, first_line = _first_example(path, method)
    legacy = is_legacy_completion_model(base_model)
    _check_format_for_method(fmt, method, base_model, legacy, first_line, errors)
    ranges = _ranges(path, size, start) if size > start else []
    n_workers = workers if workers is not None else _cpu_count()
    start_method = _start_method()
    min_bytes = PARALLEL_MIN_BYTES_FORK if start_method == "fork" else PARALLEL_MIN_BYTES
    parallel = n_workers > 1 and size >= min_bytes and len(ranges) > 1
    pool = _open_pool(min(n_workers, len(ranges)), encoding, start_method) if parallel else None
    # hash() seeds differ between processes unless they fork from one another (or one forkserver).
    fast_hash = pool is None or start_method != "spawn"
    jobs = [_Job(path, a, b, fmt, method, encoding, limit, legacy, fast_hash) for a, b in ranges]
    hasher: _Hasher | None = None
    if sha256 is None:  # started after the pool: a fork must not copy a running thread
        hasher = _Hasher(path)
        hasher.start()
    merged = _Merged(limit)
    checked = start

    def advanced(job: _Job) -> None:
        nonlocal checked
        checked += job.end - job.start
        if on_progress is not None:
            on_progress(checked, size)

    if pool is not None:
        with pool:
            for job, result in zip(jobs, pool.imap(_check_range, jobs, chunksize=1)):
                merged.add(result)
                advanced(job)
    else:
        for job in jobs:
            merged.add(_check_range(job))
            advanced(job)
    if hasher is not None:
        hasher.join()
        if hasher.exc is not None:
            raise hasher.exc
        sha256 = hasher.digest
    assert sha256 is not None
    merged.finish(fmt, method, errors, warnings, training=purpose != "validation")
    stats = merged.stats(encoding)
    if stats.approximate:
        # Never cached (see check_dataset), so this says why on every run until the encoding loads.
        warnings.append(DatasetIssue(line=None, code="tokens_approximate",
                                     message=approximate_tokens_message(encoding), hint=APPROXIMATE_HINT))
    return DatasetReport(path=path, sha256=sha256, size=size, format=fmt, valid=not errors,
                         errors=errors, warnings=warnings, stats=stats, method=method)


def _check_format_for_method(fmt: str, method: str, base_model: str | None, legacy: bool,
                             line: int, errors: list[DatasetIssue]) -> None:
    at = line or None
    if fmt == "unknown":
        if line:
            errors.append(DatasetIssue(
                line=at, code="unknown_format",
                message="cannot tell the format from the first example",
                hint="chat: {\"messages\": [...]}; DPO: {\"input\", \"preferred_output\", "
                     "\"non_preferred_output\"}; legacy: {\"prompt\", \"completion\"}"))
        return
    wanted = {"supervised": ("chat", "prompt_completion"), "dpo": ("preference",),
              "reinforcement": ("reinforcement",)}[method]
    if fmt not in wanted:
        errors.append(DatasetIssue(line=at, code="wrong_format",
                                   message=f"{fmt} format cannot be used for {method} fine-tuning",
                                   hint=f"{method} needs {' or '.join(wanted)} examples"))
        return
    if base_model and method == "supervised":
        if fmt == "prompt_completion" and not legacy:
            errors.append(DatasetIssue(line=at, code="wrong_format",
                                       message=f"prompt/completion examples are only for babbage-002 and "
                                               f"davinci-002, not {base_model}",
                                       hint="convert to chat format: {\"messages\": [...]}"))
        elif fmt == "chat" and legacy:
            errors.append(DatasetIssue(line=at, code="wrong_format",
                                       message=f"{base_model} is trained on prompt/completion examples, "
                                               "not chat", hint="use {\"prompt\", \"completion\"} lines"))


class _Merged:
    """Merges range results in file order: line offsets, stats, capped issues, duplicates."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.base_line = 0
        self.examples = 0
        self.counted = 0
        self.tokens_total = 0
        self.tokens_min = 0
        self.tokens_max = 0
        self.over_limit = 0
        self.trained_tokens = 0
        self.turns = 0
        self.approximate = False
        self.errors: list[tuple[int | None, str, str, str]] = []
        self.warnings: list[tuple[int | None, str, str, str]] = []
        self.counts: dict[str, int] = {}
        self.shown: dict[str, int] = {}
        self.aggregates: dict[str, Aggregate] = {}
        self.hashes = array("q")
        self.hash_lines = array("I")
        self.prompt_suffix: str | None = None
        self.completion_suffix: str | None = None
        self.any_prompt = False

    def _take(self, dst: list[tuple[int | None, str, str, str]],
              items: list[tuple[int | None, str, str, str]]) -> None:
        for line, code, msg, hint in items:
            n = self.shown.get(code, 0)
            if n < MAX_ISSUES_PER_CODE:
                self.shown[code] = n + 1
                dst.append((None if line is None else line + self.base_line, code, msg, hint))

    def add(self, r: RangeResult) -> None:
        from ftops.datasets.formats import _common_suffix

        self._take(self.errors, r.errors)
        self._take(self.warnings, r.warnings)
        for code, n in r.issue_counts.items():
            self.counts[code] = self.counts.get(code, 0) + n
        for key, a in r.aggregates.items():
            mine = self.aggregates.get(key)
            if mine is None:
                self.aggregates[key] = Aggregate(a.count, a.first_line + self.base_line)
            else:
                mine.count += a.count
        if r.counted:
            if self.counted == 0 or r.tokens_min < self.tokens_min:
                self.tokens_min = r.tokens_min
            self.tokens_max = max(self.tokens_max, r.tokens_max)
        self.examples += r.examples
        self.counted += r.counted
        self.tokens_total += r.tokens_total
        self.over_limit += r.over_limit
        self.trained_tokens += r.trained_tokens
        self.turns += r.assistant_turns_trained
        self.approximate = self.approximate or r.approximate
        self.hashes.frombytes(r.hashes)
        lines = array("I")
        lines.frombytes(r.hash_lines)
        base = self.base_line
        self.hash_lines.extend(x + base for x in lines)
        if r.prompt_suffix is not None:
            self.prompt_suffix = _common_suffix(self.prompt_suffix, r.prompt_suffix)
            self.any_prompt = True
        if r.completion_suffix is not None:
            self.completion_suffix = _common_suffix(self.completion_suffix, r.completion_suffix)
        self.base_line += r.lines

    def _duplicates(self) -> Iterator[tuple[int, int]]:
        """(line, first line) of examples identical to an earlier one.

        Small files use a set. Large ones first pass the hashes through a 2**27-bit filter and
        keep only hashes seen twice as candidates, so memory stays ~16 bytes per example
        (the two arrays) plus 16 MB instead of a set entry (~60 bytes) per example.
        """
        candidates: set[int] = set()
        if len(self.hashes) <= SMALL_DEDUP:
            seen: set[int] = set()
            for h in self.hashes:
                if h in seen:
                    candidates.add(h)
                else:
                    seen.add(h)
            del seen
        else:
            bits = bytearray(1 << 24)
            mask = (1 << 27) - 1
            for h in self.hashes:
                b = h & mask
                byte, bit = b >> 3, 1 << (b & 7)
                if bits[byte] & bit:
                    candidates.add(h)
                else:
                    bits[byte] |= bit
            del bits
        if not candidates:
            return
        first: dict[int, int] = {}
        for h, line in zip(self.hashes, self.hash_lines):
            if h in candidates:
                f = first.get(h)
                if f is None:
                    first[h] = line
                else:
                    yield line, f

    def finish(self, fmt: str, method: str, errors: list[DatasetIssue], warnings: list[DatasetIssue],
               *, training: bool = True) -> None:
        dup_count = 0
        for dup_line, f in self._duplicates():
            dup_count += 1
            if dup_count <= MAX_ISSUES_PER_CODE:
                self.warnings.append((dup_line, "duplicate_example", f"duplicate of the example on line {f}",
                                      "remove repeated examples"))
        if dup_count:
            self.counts["duplicate_example"] = dup_count
        self.warnings.sort(key=lambda t: (t[0] or 0))
        for line, code, msg, hint in self.errors:
            errors.append(DatasetIssue(line=line, code=code, message=msg, hint=hint))
        for line, code, msg, hint in self.warnings:
            warnings.append(DatasetIssue(line=line, code=code, message=msg, hint=hint))
        for code, n in sorted(self.counts.items()):
            if n > MAX_ISSUES_PER_CODE:
                is_err = any(i.code == code for i in errors)
                (errors if is_err else warnings).append(DatasetIssue(
                    line=None, code=code, message=f"{n - MAX_ISSUES_PER_CODE} more `{code}` not shown "
                                                  f"({n} in total)"))
        for key, a in sorted(self.aggregates.items()):
            if key == "missing_system_message":
                warnings.append(DatasetIssue(
                    line=a.first_line, code="missing_system_message",
                    message=f"{a.count} example(s) have no system message (first on line {a.first_line})",
                    hint="a consistent system prompt helps; use the same one at inference"))
            elif key.startswith("extra_key:"):
                k = key.split(":", 1)[1]
                warnings.append(DatasetIssue(
                    line=a.first_line, code="extra_key",
                    message=f"top-level key `{k}` is ignored by training ({a.count} example(s), "
                            f"first on line {a.first_line})"))
            elif key == "completion_leading_space":
                warnings.append(DatasetIssue(
                    line=a.first_line, code="completion_leading_space",
                    message=f"{a.count} completion(s) do not start with a whitespace (first on line "
                            f"{a.first_line})",
                    hint="start every completion with a space; tokenization works better"))
        if fmt == "prompt_completion" and self.any_prompt:
            if not self.prompt_suffix:
                warnings.append(DatasetIssue(
                    line=None, code="prompt_separator",
                    message="prompts do not all end with the same separator",
                    hint="end every prompt with a fixed separator such as \"\\n\\n###\\n\\n\""))
            if not self.completion_suffix:
                warnings.append(DatasetIssue(
                    line=None, code="completion_stop",
                    message="completions do not all end with the same stop sequence",
                    hint="end every completion with a fixed stop sequence such as \"\\n\" or \" END\""))
        if not training:
            pass
        elif self.examples < MIN_EXAMPLES:
            errors.append(DatasetIssue(line=None, code="too_few_examples",
                                       message=f"{self.examples} example(s); at least {MIN_EXAMPLES} "
                                               "are required"))
        elif self.examples < FEW_EXAMPLES:
            warnings.append(DatasetIssue(line=None, code="few_examples",
                                         message=f"only {self.examples} examples; 50 to 100 well-crafted "
                                                 "examples usually give clear improvements"))
        errors.sort(key=lambda i: (i.line if i.line is not None else sys.maxsize))
        warnings.sort(key=lambda i: (i.line if i.line is not None else sys.maxsize))

    def stats(self, encoding: str) -> DatasetStats:
        mean = self.tokens_total / self.counted if self.counted else 0.0
        return DatasetStats(
            examples=self.examples, tokens_total=self.tokens_total, tokens_min=self.tokens_min,
            tokens_mean=round(mean, 2), tokens_max=self.tokens_max, examples_over_limit=self.over_limit,
            assistant_turns_trained=self.turns, trained_tokens_per_epoch=self.trained_tokens,
            encoding=None if self.approximate else encoding, approximate=self.approximate,
            token_limit=self.limit)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _start_method() -> str:
    """How worker processes start.

    Linux: plain fork when this process runs no other thread (instant: workers inherit the
    imported modules, the loaded encoding and the hash() seed); forkserver otherwise, since
    forking a threaded process can deadlock the child. Elsewhere: spawn.
    """
    if not sys.platform.startswith("linux"):
        return "spawn"
    return "fork" if threading.active_count() == 1 else "forkserver"


def _open_pool(processes: int, encoding: str, start_method: str) -> Pool | None:
    """A worker pool, or None when processes cannot be started (restricted sandboxes, no
    /dev/shm): the caller then checks the ranges in this process, slower but the same report."""
    import multiprocessing as mp

    ctx = mp.get_context(start_method)
    if start_method == "fork":
        load_encoding(encoding)  # once, here: forked workers inherit it instead of each loading it
    elif start_method == "forkserver":
        ctx.set_forkserver_preload(["ftops.datasets.check"])
    try:
        return ctx.Pool(processes=processes, initializer=load_encoding, initargs=(encoding,))
    except (OSError, RuntimeError, ValueError):
        return None
