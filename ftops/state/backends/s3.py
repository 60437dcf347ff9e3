"""The S3 backend (boto3, extra `ftops[s3]`): the Terraform/OpenTofu layout on any S3-compatible store.

- the state is one object, `KEY`; a save is `PutObject` with `If-Match: <etag of what we read>` (or
  `If-None-Match: *` when there is none yet): the compare-and-swap. 412 (or 409, a concurrent
  conditional write) means someone else wrote: refused with `state.conflict`, never merged;
- the lock is `KEY.lock`, created with `If-None-Match: *`; its body names the holder. A crashed run
  leaves it behind: `ftops force-unlock LOCK_ID` deletes it after checking the id;
- at start-up a self-test writes a probe object twice with `If-None-Match: *` and once with a wrong
  `If-Match`: a store that ignores conditional headers would let two runs both "win" the lock, so
  ftops refuses to use it;
- bucket versioning is checked and recommended (every state version is then kept by the store).

S3 has no partial writes, so each save rewrites the whole object: O(size of the state) per action,
unlike the local and postgres backends.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from ftops.diagnostics import FtopsError, error, warning
from ftops.state.backend import LockInfo, StateBackend, StateWriteError, check_document, conflict, dump_state
from ftops.state.model import State

_SAFE: dict[tuple[str, str], bool] = {}  # (endpoint, bucket) -> self-test passed, once per process


def _code(e: Exception) -> tuple[str, int]:
    resp = getattr(e, "response", None) or {}
    return (str(resp.get("Error", {}).get("Code", "")), int(resp.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)))


def _contended(e: Exception) -> bool:
    code, status = _code(e)
    return status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict")


def _missing(e: Exception) -> bool:
    code, status = _code(e)
    return status == 404 or code in ("NoSuchKey", "404", "NotFound")


class S3Backend(StateBackend):
    def __init__(self, *, bucket: str, key: str, region: str | None = None, endpoint_url: str | None = None,
                 client: Any = None):
        try:
            import boto3  # type: ignore[import-untyped]
            import botocore.exceptions  # type: ignore[import-untyped]
        except ImportError:
            raise FtopsError(error("state.backend_missing", "the s3 state backend needs boto3",
                                   "boto3 is not installed.", hint="pip install 'ftops[s3]'")) from None
        self._errors: tuple[type[Exception], ...] = (botocore.exceptions.ClientError,
                                                     botocore.exceptions.BotoCoreError)
        self.bucket, self.key, self.lock_key = bucket, key, key + ".lock"
        self.location = f"s3://{bucket}/{key}"
        self.warnings = []
        self.s3 = client or boto3.client("s3", region_name=region, endpoint_url=endpoint_url)
        self._etag: str | None = None
        self._stored: tuple[int, str] | None = None
        self._read_once = False
        self._lock: tuple[LockInfo, str] | None = None
        try:
            if not _SAFE.get((endpoint_url or "", bucket)):
                self._self_test()
                _SAFE[(endpoint_url or "", bucket)] = True
            self._check_versioning()
        except self._errors as e:
            raise self._unreachable(e) from None

    def _unreachable(self, e: Exception) -> FtopsError:
        return FtopsError(error("state.backend_unreachable", "cannot use the s3 state backend",
                                f"{self.location}: {type(e).__name__}: {str(e)[:200]}; nothing was sent.",
                                hint="check the bucket, the credentials and the endpoint"))

    def _self_test(self) -> None:
        """Refuse a store that ignores If-None-Match / If-Match: its locks and CAS would not hold."""
        probe = f"{self.key}.probe-{uuid.uuid4().hex}"
        try:
            self.s3.put_object(Bucket=self.bucket, Key=probe, Body=b"1", IfNoneMatch="*")
            ignored = []
            try:
                self.s3.put_object(Bucket=self.bucket, Key=probe, Body=b"2", IfNoneMatch="*")
                ignored.append("If-None-Match")
            except self._errors as e:
                if not _contended(e):
                    raise
            try:
                self.s3.put_object(Bucket=self.bucket, Key=probe, Body=b"3", IfMatch='"0123456789abcdef"')
                ignored.append("If-Match")
            except self._errors as e:
                if not _contended(e):
                    raise
        finally:
            try:
                self.s3.delete_object(Bucket=self.bucket, Key=probe)
            except self._errors:
                pass
        if ignored:
            raise FtopsError(error(
                "state.s3_unsafe", "the S3 store ignores conditional writes",
                f"{self.location}: a probe write with {' and '.join(ignored)} succeeded where it must fail, so "
                "two runs could both take the lock or overwrite each other's state. ftops refuses to use it.",
                hint="use a store that supports conditional writes (AWS S3, recent MinIO/R2), or postgres"))

    def _check_versioning(self) -> None:
        status = self.s3.get_bucket_versioning(Bucket=self.bucket).get("Status")
        if status != "Enabled":
            self.warnings.append(warning(
                "state.s3_versioning", "bucket versioning is off",
                f"{self.location}: without versioning an overwritten state cannot be recovered from the store.",
                hint=f"aws s3api put-bucket-versioning --bucket {self.bucket} "
                     "--versioning-configuration Status=Enabled"))

    # ------------------------------------------------------------------ reader

    def load(self) -> State:
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except self._errors as e:
            if not _missing(e):
                raise self._unreachable(e) from None
            self._etag, self._stored, self._read_once = None, None, True
            return State()
        raw = obj["Body"].read()
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise FtopsError(self._corrupt(f"it is not valid JSON ({e})")) from None
        state = check_document(doc, self.location, self._corrupt)
        self._etag, self._stored, self._read_once = obj["ETag"], (state.serial, state.lineage), True
        return state

    def _corrupt(self, why: str) -> Any:
        return error("state.corrupt", "the state object is corrupt", f"{self.location}: {why}.",
                     hint="restore an earlier version of the object (bucket versioning); the next plan re-adopts "
                          "every job from the provider")

    # ------------------------------------------------------------------ writer

    def save(self, state: State) -> State:
        from ftops import __version__

        if not self._read_once:
            self.load()
        if self._stored is not None and self._stored != (state.serial, state.lineage):
            raise conflict(self.location, self._stored, (state.serial, state.lineage))
        new = state.saved_copy(serial=state.serial + 1, ftops_version=__version__)
        self._put(new)
        state._touched_models.clear()
        state._touched_files.clear()
        return new

    def replace(self, state: State) -> State:
        if not self._read_once:
            self.load()
        self._put(state)
        return state

    def _put(self, new: State) -> None:
        body = json.dumps(dump_state(new), indent=2, sort_keys=True).encode() + b"\n"
        cond = {"IfMatch": self._etag} if self._etag else {"IfNoneMatch": "*"}
        try:
            resp = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body,
                                      ContentType="application/json", **cond)
        except self._errors as e:
            if _contended(e):
                self._read_once = False
                raise conflict(self.location, (-1, "changed"), (new.serial - 1, new.lineage)) from None
            raise StateWriteError(error(
                "state.write_failed", "the state could not be saved",
                f"{self.location}: {type(e).__name__}: {str(e)[:200]}. The object was not replaced: the previous "
                "state is intact.", hint="check the store, then re-run")) from None
        self._etag, self._stored = resp["ETag"], (new.serial, new.lineage)

    # ------------------------------------------------------------------ locker

    def _read_lock(self) -> tuple[LockInfo, str] | None:
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=self.lock_key)
        except self._errors as e:
            if _missing(e):
                return None
            raise self._unreachable(e) from None
        try:
            return LockInfo.model_validate_json(obj["Body"].read()), obj["ETag"]
        except ValueError:
            return LockInfo(id="?", who="an unreadable lock object", operation="?", since="?"), obj["ETag"]

    def try_lock(self, info: LockInfo) -> LockInfo | None:
        try:
            resp = self.s3.put_object(Bucket=self.bucket, Key=self.lock_key, Body=info.model_dump_json().encode(),
                                      IfNoneMatch="*", ContentType="application/json")
        except self._errors as e:
            if not _contended(e):
                raise self._unreachable(e) from None
            held = self._read_lock()
            return held[0] if held else LockInfo(id="?", who="another ftops run (just released)",
                                                 operation="?", since="?")
        self._lock = (info, resp["ETag"])
        return None

    def unlock(self) -> None:
        if self._lock is None:
            return
        held = self._read_lock()
        if held is not None and held[0].id == self._lock[0].id:
            self.s3.delete_object(Bucket=self.bucket, Key=self.lock_key)
        self._lock = None

    def lock_info(self) -> LockInfo | None:
        held = self._read_lock()
        return held[0] if held else None

    def force_unlock(self, lock_id: str) -> None:
        held = self._read_lock()
        if held is None:
            raise FtopsError(error("state.not_locked", "the state is not locked",
                                   f"there is no lock object at s3://{self.bucket}/{self.lock_key}; nothing to unlock."))
        if held[0].id != lock_id:
            raise FtopsError(error("state.lock_id_mismatch", "that is not the current lock",
                                   f"{self.location} is held by {held[0].describe()}, not by lock {lock_id}.",
                                   hint=f"check the holder; to break it: ftops force-unlock {held[0].id}"))
        self.s3.delete_object(Bucket=self.bucket, Key=self.lock_key)

    def close(self) -> None:
        if self._lock is not None:
            self.unlock()
