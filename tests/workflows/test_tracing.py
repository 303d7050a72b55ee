"""OpenTelemetry traces of a real fleet run (in-process broker, PostgreSQL state): a span per
processed message, carrying ids and never the subject's email. Spans are caught with the SDK's
in-memory exporter.

Not yet: tasks and the completion that the plan actor runs inline (workflows/runner.py goes on
with a request's next step itself) get no span of their own; spans inside the runner are to come.
"""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.workflows.fleet_helpers import CUSTOMER, Fleet
from workflows.runtime import InProcessFleet, wait_for


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


@pytest.mark.parametrize("kind", ["access", "erasure"])
def test_a_request_is_traced_by_ids_only(one_system: Fleet, spans: InMemorySpanExporter,
                                         kind: str) -> None:
    fleet = one_system
    request_id = fleet.submit(kind)
    with InProcessFleet(fleet.app, threads=2):
        assert wait_for(fleet.app, request_id, timeout=90).state == "completed"
    finished = spans.get_finished_spans()
    plan = next(s for s in finished if s.name == "dsar.plan_request")
    assert plan.attributes is not None and plan.attributes["dsar.request_id"] == request_id
    assert plan.status.is_ok
    user = CUSTOMER.split("@")[0].lower()
    for span in finished:
        text = repr((span.name, dict(span.attributes or {}), span.events)).lower()
        assert CUSTOMER.lower() not in text and user not in text, span.name
