"""Real servers for the state backend tests: PostgreSQL (initdb + pg_ctl in a temp dir) and moto's S3
server on 127.0.0.1. Each helper returns None with the reason when it cannot start, so tests skip
saying why instead of failing on a machine without PostgreSQL.

PostgreSQL refuses to run as root, so as root the cluster is created and started as the `postgres`
user (`runuser -u postgres --`); the server's output goes to a log file (`pg_ctl -l`), so no pipe
stays open to the test process.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return cands[-1] if cands else None


@dataclass
class Postgres:
    url: str
    datadir: Path
    pg_ctl: str
    as_user: list[str]
    log: Path

    def stop(self) -> None:
        subprocess.run([*self.as_user, self.pg_ctl, "-D", str(self.datadir), "-m", "immediate", "stop"],
                       capture_output=True, check=False, timeout=60)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """A new, empty database on this server; returns its URL (one per trial keeps trials independent,
        schema creation included)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name

    def drop_database(self, name: str) -> None:
        """Drop `name`, ending any session still connected to it (a killed run's, if the server has not
        noticed yet)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_postgres() -> Postgres | str:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        return "PostgreSQL is not installed (no initdb/pg_ctl; apt-get install -y postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    base = Path(tempfile.mkdtemp(prefix="ftops-pg-"))
    datadir, log = base / "data", base / "server.log"
    as_user: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            return "running as root without runuser(1): cannot start PostgreSQL as the postgres user"
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
        os.chown(base, pw.pw_uid, pw.pw_gid)
        as_user = [runuser, "-u", "postgres", "--"]
    port = _free_port()
    r = subprocess.run([*as_user, initdb, "-D", str(datadir), "-A", "trust", "-U", "postgres", "--no-sync"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        return f"initdb failed: {r.stderr.strip()[-300:]}"
    r = subprocess.run([*as_user, pg_ctl, "-D", str(datadir), "-l", str(log), "-w", "-t", "60", "-o",
                        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        text = log.read_text(errors="replace")[-300:] if log.exists() else r.stderr
        shutil.rmtree(base, ignore_errors=True)
        return f"pg_ctl start failed: {text.strip()}"
    return Postgres(f"postgresql://postgres@127.0.0.1:{port}/postgres", datadir, pg_ctl, as_user, log)


@dataclass
class S3Server:
    endpoint: str
    server: object

    def stop(self) -> None:
        self.server.stop()  # type: ignore[attr-defined]


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def start_s3() -> S3Server | str:
    try:
        import boto3  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ImportError as e:
        return f"moto[server]/boto3 not installed ({e.name}); pip install -e '.[test]'"
    for k, v in S3_ENV.items():
        os.environ.setdefault(k, v)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return S3Server(f"http://127.0.0.1:{port}", server)


def make_bucket(endpoint: str, bucket: str, versioning: bool = True) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    if versioning:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
