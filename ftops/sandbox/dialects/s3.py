"""A minimal Amazon S3 under /s3: object PUT, HEAD, GET, DELETE and ListObjectsV2, path-style.

Enough for training data that Bedrock reads from `s3://BUCKET/KEY`: boto3 with
`endpoint_url="http://HOST:PORT/s3"` and `addressing_style: path` sends `PUT /s3/BUCKET/KEY`.
Any bucket exists. Objects are rows of the shared `files` table (dialect `s3`, filename
`BUCKET/KEY`, purpose `s3-object`); a PUT over an existing key replaces it. Errors are S3's XML
(`<Error><Code>NoSuchKey</Code>…`). Requests must carry a SigV4 `Authorization` header; the
signature itself is not checked.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import secrets
import sqlite3
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from ftops.sandbox.app import MB
from ftops.sandbox.dialects import Dialect
from ftops.sandbox.errors import ApiError

__all__ = ["S3Dialect", "object_row", "s3_uri_row"]

MAX_OBJECT_BYTES = 5 * 1024 * MB  # a single PUT
PURPOSE = "s3-object"
_CODES = {400: "InvalidRequest", 401: "AccessDenied", 403: "AccessDenied", 404: "NoSuchKey", 413: "EntityTooLarge",
          429: "SlowDown", 500: "InternalError", 503: "ServiceUnavailable"}


def object_row(conn: sqlite3.Connection, bucket: str, key: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM files WHERE dialect = 's3' AND deleted = 0 AND filename = ? ORDER BY seq DESC LIMIT 1",
        (f"{bucket}/{key}",)).fetchone()
    return row


def s3_uri_row(conn: sqlite3.Connection, uri: str) -> sqlite3.Row | None:
    """The object at `s3://BUCKET/KEY` (for other dialects that read training data from S3)."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        return None
    bucket, key = uri[5:].split("/", 1)
    return object_row(conn, bucket, key)


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class S3Dialect(Dialect):
    name = "s3"
    prefix = "/s3"

    def rules(self) -> list[Rule]:
        return [Rule("/<bucket>", endpoint="bucket", methods=["GET"]),
                Rule("/<bucket>/<path:key>", endpoint="object", methods=["GET", "HEAD", "PUT", "DELETE"])]

    def authenticate(self, request: Request, endpoint: str) -> None:
        if not request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
            raise ApiError(403, "Access Denied")

    def error_response(self, exc: ApiError) -> Response:
        code = exc.code if exc.code and exc.code[0].isupper() else _CODES.get(exc.status, "InternalError")
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(exc.message)}'
                f"</Message><RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>")
        response = Response(body, status=exc.status, mimetype="application/xml")
        for key, value in exc.headers.items():
            response.headers[key] = value
        return response

    def decorate(self, response: Response, started: float) -> None:
        response.headers["x-amz-request-id"] = secrets.token_hex(8).upper()
        response.headers["x-amz-id-2"] = secrets.token_hex(24)

    def _headers(self, row: sqlite3.Row) -> dict[str, Any]:
        return {"ETag": f'"{row["id"].split("-")[1]}"', "Content-Length": str(row["bytes"]),
                "Last-Modified": email.utils.formatdate(row["created_at"], usegmt=True),
                "Content-Type": "application/octet-stream", "x-amz-meta-sha256": row["sha256"]}

    def h_object(self, request: Request, bucket: str, key: str) -> Response:
        if request.method == "PUT":
            return self._put(request, bucket, key)
        with self.app.tx() as (conn, _now, _sim):
            row = object_row(conn, bucket, key)
            if row is None:
                if request.method == "HEAD":
                    return Response(status=404)
                if request.method == "DELETE":
                    return Response(status=204)
                raise ApiError(404, "The specified key does not exist.", code="NoSuchKey")
            if request.method == "DELETE":
                self.app.delete_file(conn, row["id"])
                return Response(status=204)
            headers = self._headers(row)
            if request.method == "HEAD":
                response = Response(status=200)
                response.headers.update(headers)
                response.automatically_set_content_length = False
                return response
            data = self.app.store.file_path(row["id"]).read_bytes()
        response = Response(data, status=200)
        response.headers.update({k: v for k, v in headers.items() if k != "Content-Length"})
        return response

    def _put(self, request: Request, bucket: str, key: str) -> Response:
        if request.headers.get("Content-Encoding", "").find("aws-chunked") >= 0:
            raise ApiError(501, "aws-chunked uploads are not supported by the sandbox", code="NotImplemented")
        object_id = "s3obj-" + secrets.token_hex(16)
        tmp = self.app.tmp_path(object_id)
        size, sha, md5 = self.app.copy_hashed([request.stream], tmp, MAX_OBJECT_BYTES)
        object_id = f"s3obj-{md5}-{secrets.token_hex(4)}"
        try:
            with self.app.tx() as (conn, now, _sim):
                old = object_row(conn, bucket, key)
                row = self.app.commit_file(conn, tmp, dialect=self.name, file_id=object_id, now=now, size=size,
                                           filename=f"{bucket}/{key}", purpose=PURPOSE, sha256=sha,
                                           expires_at=None)
                if old is not None:
                    self.app.delete_file(conn, old["id"])
        finally:
            tmp.unlink(missing_ok=True)
        response = Response(status=200)
        response.headers["ETag"] = f'"{md5}"'
        assert row is not None
        return response

    def h_bucket(self, request: Request, bucket: str) -> Response:
        prefix = request.args.get("prefix", "")
        after = request.args.get("continuation-token") or request.args.get("start-after") or ""
        try:
            max_keys = max(1, min(1000, int(request.args.get("max-keys", "1000"))))
        except ValueError:
            raise ApiError(400, "max-keys must be an integer", code="InvalidArgument") from None
        with self.app.tx() as (conn, _now, _sim):
            rows = conn.execute(
                "SELECT * FROM files WHERE dialect = 's3' AND deleted = 0 AND filename > ? AND filename LIKE ? "
                "ESCAPE '\\' ORDER BY filename LIMIT ?",
                (f"{bucket}/{after}", f"{bucket}/" + prefix.replace("\\", "\\\\").replace("%", "\\%")
                 .replace("_", "\\_") + "%", max_keys + 1)).fetchall()
        more = len(rows) > max_keys
        rows = rows[:max_keys]
        items = "".join(
            f"<Contents><Key>{escape(r['filename'].split('/', 1)[1])}</Key><LastModified>{_iso(r['created_at'])}"
            f"</LastModified><ETag>&quot;{r['id'].split('-')[1]}&quot;</ETag><Size>{r['bytes']}</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>" for r in rows)
        token = (f"<NextContinuationToken>{escape(rows[-1]['filename'].split('/', 1)[1])}</NextContinuationToken>"
                 if more else "")
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
                f'2006-03-01/"><Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(rows)}'
                f"</KeyCount><MaxKeys>{max_keys}</MaxKeys><IsTruncated>{'true' if more else 'false'}</IsTruncated>"
                f"{items}{token}</ListBucketResult>")
        return Response(body, status=200, mimetype="application/xml")
