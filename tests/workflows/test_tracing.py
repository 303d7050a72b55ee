"""OpenTelemetry traces of a real fleet run (in-process broker, PostgreSQL state): a span per
processed message, and inside it a span per task, per connector call and for the completion,
carrying ids and names and never the subject's email. Spans are caught with the SDK's
in-memory exporter; the OTLP export is tested against a local OTLP/HTTP receiver (a small HTTP
server that keeps what is POSTed to /v1/traces) with a real ``dsar worker``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.workflows.fleet_helpers import CUSTOMER, DSAR, REPO, Fleet, wait_until
from workflows.runtime import InProcessFleet, wait_for

IDS_AND_NAMES = {"dsar.request_id", "dsar.task_id", "dsar.system", "dsar.action",
                 "dsar.outcome", "dsar.connector.kind", "dsar.collections", "dsar.mail_id",
                 "dsar.id", "error.type", "messaging.system", "messaging.message.id",
                 "messaging.destination.name"}


@pytest.fixture
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the first test to ask sets it for the process
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    return exporter


def _no_email(finished: tuple[ReadableSpan, ...] | list[Any], text: str = "") -> None:
    user = CUSTOMER.split("@")[0].lower()
    for span in finished:
        text += repr((span.name, dict(span.attributes or {}), span.events)).lower()
    assert CUSTOMER.lower() not in text and user not in text


def _parent(span: ReadableSpan, finished: tuple[ReadableSpan, ...]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    return next(s for s in finished if s.context.span_id == span.parent.span_id)


@pytest.mark.parametrize(("kind", "operation"), [("access", "collect"),
                                                 ("erasure", "erase_counted")])
def test_a_request_is_traced_by_ids_only(one_system: Fleet, spans: InMemorySpanExporter,
                                         kind: str, operation: str) -> None:
    fleet = one_system
    request_id = fleet.submit(kind)
    with InProcessFleet(fleet.app, threads=2):
        assert wait_for(fleet.app, request_id, timeout=90).state == "completed"
    finished = spans.get_finished_spans()
    plan = next(s for s in finished if s.name == "dsar.plan_request")
    assert plan.attributes is not None and plan.attributes["dsar.request_id"] == request_id
    assert plan.status.is_ok

    # the plan actor runs the request's one task inline, and completes it in that task
    task = next(s for s in finished if s.name == "dsar.task")
    assert _parent(task, finished) is plan
    assert dict(task.attributes or {}) == {
        "dsar.request_id": request_id, "dsar.task_id": 1, "dsar.system": "shop_a",
        "dsar.action": operation.split("_")[0], "dsar.outcome": "done"}
    call = next(s for s in finished if s.name == f"dsar.connector.{operation}")
    assert _parent(call, finished) is task
    attributes = dict(call.attributes or {})
    assert attributes["dsar.system"] == "shop_a" and attributes["dsar.connector.kind"] == "sql"
    assert "invoice" in [str(c).lower() for c in attributes["dsar.collections"]]
    complete = next(s for s in finished if s.name == "dsar.complete")
    assert _parent(complete, finished) is task
    assert dict(complete.attributes or {}) == {"dsar.request_id": request_id}
    for span in finished:
        assert set(span.attributes or {}) <= IDS_AND_NAMES, span.name
    for span in (plan, task, call, complete):
        assert span.status.is_ok, span.name
    _no_email(finished)


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/v1/traces":
            self.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    handler = type("Receiver", (_Receiver,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()


def test_spans_are_exported_over_otlp_http(one_system: Fleet,
                                           receiver: tuple[str, list[bytes]]) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    endpoint, bodies = receiver
    fleet = one_system
    request_id = fleet.submit("access")
    env = {**os.environ, **fleet.env, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
           "OTEL_SERVICE_NAME": "dsar-test-worker", "OTEL_BSP_SCHEDULE_DELAY": "200"}
    proc = subprocess.Popen([DSAR, "worker", "-t", "2"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until(lambda: fleet.state(request_id) == "completed", 90, "the request completed")
        wait_until(lambda: bodies, 30, "spans POSTed to /v1/traces")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    spans, services = [], set()
    for body in bodies:
        export = ExportTraceServiceRequest.FromString(body)
        for resource in export.resource_spans:
            services |= {a.value.string_value for a in resource.resource.attributes
                         if a.key == "service.name"}
            spans += [s for scope in resource.scope_spans for s in scope.spans]
    assert services == {"dsar-test-worker"}
    names = {s.name for s in spans}
    assert {"dsar.plan_request", "dsar.task", "dsar.connector.collect",
            "dsar.complete"} <= names, names
    plan = next(s for s in spans if s.name == "dsar.plan_request")
    assert {a.key: a.value.string_value for a in plan.attributes}["dsar.request_id"] == request_id
    text = b"".join(bodies).lower()
    assert CUSTOMER.lower().encode() not in text
    assert CUSTOMER.split("@")[0].lower().encode() not in text
