"""moto's S3 server over real HTTP, for the S3 connector's tests and benchmark.

Use it as a pytest plugin (``pytest_plugins = ["tests.s3server"]`` in a test module). The
session-scoped :func:`moto_endpoint` starts ``python -m moto.server`` bound to 127.0.0.1 on a
free port in its own process (so the tests' memory measurements do not include the server)
and *fails* — never skips — when it cannot. :class:`FaultServer` sits in front of it to play
throttling or denial over real HTTP.

PYTEST_DONT_REWRITE (test modules import helpers from here before pytest loads it as a plugin).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from connectors.base import ConnectorContext
from connectors.s3 import S3Connector, S3Settings
from dsar.datamap.schema import S3System

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoProcess:
    """``python -m moto.server -H 127.0.0.1 -p PORT`` as a child process."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # its request log goes to a file: an unread pipe fills after a few hundred requests
        # and then blocks the server for good
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                err = self.log.read().decode(errors="replace")[-3000:]
                raise RuntimeError(f"moto server exited with {self.proc.returncode}: {err}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.url} within {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The moto server's URL; dummy credentials are put in the environment for the session."""
    saved = {name: os.environ.get(name) for name in DUMMY_ENV}
    os.environ.update(DUMMY_ENV)
    try:
        server = MotoProcess()
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"could not start moto's S3 server: {exc}", pytrace=False)
    yield server.url
    server.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    """A plain boto3 client for arranging and inspecting test buckets."""
    return client(moto_endpoint)


BucketFactory = Callable[..., str]


@pytest.fixture
def make_bucket(s3: Any) -> BucketFactory:
    """``make_bucket(versioned=False, object_lock=False)`` -> a new, uniquely named bucket."""

    def make(*, versioned: bool = False, object_lock: bool = False) -> str:
        name = f"dsar-test-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
        if versioned or object_lock:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    return make


def aws_cli(endpoint: str, *args: str) -> Any:
    """Run the AWS CLI (``s3api …``) against ``endpoint`` and return its parsed JSON output."""
    aws = Path(sys.executable).with_name("aws")
    env = {**os.environ, **DUMMY_ENV, "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_PAGER": ""}
    out = subprocess.run(
        [str(aws), "--endpoint-url", endpoint, "--output", "json", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    if out.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed: {out.stderr}")
    return json.loads(out.stdout) if out.stdout.strip() else {}


class FaultServer:
    """An HTTP front for moto that answers the first ``failures`` requests with an S3 error
    (``status``/``code``) and forwards the rest to ``upstream``. ``failures=None``: all fail."""

    def __init__(self, upstream: str, status: int, code: str, failures: int | None) -> None:
        self.requests = 0
        self.lock = threading.Lock()
        fault = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with fault.lock:
                    fault.requests += 1
                    fail = failures is None or fault.requests <= failures
                if fail:
                    payload = (
                        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                        f"<Message>injected by the test</Message></Error>"
                    ).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                request = urllib.request.Request(
                    upstream + self.path, data=body or None, method=self.command,
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                )
                try:
                    answer = urllib.request.urlopen(request, timeout=30)
                except urllib.error.HTTPError as exc:
                    answer = exc
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


ENDPOINT_ENV = "DSAR_TEST_S3_ENDPOINT"
HASH_KEY = b"test-hash-key-for-s3-evidence"


def s3_system(bucket: str, *, objects: Any = (), shared: Any = ()) -> S3System:
    """An S3 system of the data map whose endpoint comes from ``DSAR_TEST_S3_ENDPOINT``."""
    return S3System.model_validate({
        "name": "files", "kind": "s3", "bucket": bucket, "endpoint_url_env": ENDPOINT_ENV,
        "region": "us-east-1", "objects": list(objects), "shared": list(shared),
    })


def open_s3(endpoint: str, system: S3System, **settings: Any) -> S3Connector:
    """The connector under test, pointed at ``endpoint`` through the context's environ."""
    context = ConnectorContext(hash_key=HASH_KEY, environ={ENDPOINT_ENV: endpoint})
    return S3Connector(system, context, S3Settings(**settings))


class RecordingSink:
    """A CollectionSink that keeps what it is given: rows per collection, objects by name."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.batches = 0
        self.objects: dict[str, tuple[dict[str, str], bytes]] = {}

    def write_rows(self, system: str, collection: str, rows: Any) -> None:
        self.batches += 1
        self.rows.setdefault(collection, []).extend(dict(r) for r in rows)

    def write_object(
        self, system: str, collection: str, name: str, metadata: Any, chunks: Any
    ) -> None:
        self.objects[name] = (dict(metadata), b"".join(chunks))


class NullSink:
    """Drops everything (memory and speed measurements)."""

    def __init__(self) -> None:
        self.rows = 0

    def write_rows(self, system: str, collection: str, rows: Any) -> None:
        self.rows += sum(1 for _ in rows)

    def write_object(
        self, system: str, collection: str, name: str, metadata: Any, chunks: Any
    ) -> None:
        for _ in chunks:
            pass
