"""OpenTelemetry traces of the fleet's work: one span per processed message, ids only.

:class:`Tracing` is a Dramatiq middleware: every message a worker processes runs inside a span
named ``dsar.<actor>`` (``dsar.plan_request``, ``dsar.run_task_sql``, ``dsar.assemble_request``,
...) whose attributes are ids and nothing else: ``dsar.request_id`` (plan, assemble),
``dsar.task_id`` (a task), ``dsar.mail_id`` (a queued message), plus Dramatiq's message id and
queue. A failure sets the span's status to error with the exception's *type* only: exception
texts may quote data. Broker messages carry ids only (DESIGN invariant 4), so nothing personal
can reach a span from here.

Inside a message, :func:`span` opens child spans for the steps a worker runs inline
(``dsar.task`` for each task, ``dsar.complete`` for a completion in the last task's
transaction, ``dsar.assemble`` for an assembly, see :mod:`workflows.assembly`), and
:func:`trace_connector` gives each connector call a span ``dsar.connector.<operation>``
(``collect``, ``erase``, ``count``, ``erase_counted``) with the system's name and kind, and,
once it returns, the names of the collections it reported on. Their attributes are ids and the
data map's names only, never key values; exceptions are not recorded (their texts may quote
data), only their type.

OpenTelemetry is optional (``pip install dsar[otel]``): without it :func:`install` does
nothing. With it, spans go to whatever tracer provider the process has; :func:`install` sets up
an OTLP/HTTP exporter when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces-specific variable) is
set and no provider was configured yet (the standard ``OTEL_*`` variables apply).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dramatiq

log = logging.getLogger("dsar.tracing")

__all__ = ["Tracing", "install", "span", "trace_connector", "traced"]

_OPERATIONS = ("collect", "erase", "count", "erase_counted")


@functools.cache
def _tracer() -> Any:
    """The tracer for spans inside a message, or None without OpenTelemetry."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace.get_tracer("dsar.workflows")


@contextmanager
def span(name: str, attributes: Mapping[str, Any]) -> Iterator[Any]:
    """A child span of the current one named ``name`` with ``attributes`` (ids and names
    only); yields it (None without OpenTelemetry). An exception marks it as an error with the
    exception's type, and goes on."""
    tracer = _tracer()
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import Status, StatusCode

    with tracer.start_as_current_span(name, attributes=dict(attributes), record_exception=False,
                                      set_status_on_exception=False) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            current.set_attribute("error.type", type(exc).__name__)
            raise


def traced(call: Callable[..., Any], name: str,
           attributes: Mapping[str, Any]) -> Callable[..., Any]:
    """``call`` run inside :func:`span` ``(name, attributes)`` each time it is called."""

    @functools.wraps(call)
    def run(*args: Any, **kwargs: Any) -> Any:
        with span(name, attributes):
            return call(*args, **kwargs)

    return run


def trace_connector(connector: Any, system: str) -> Any:
    """Give ``connector``'s collect, erase, count and erase_counted a span each (on this
    instance, so its own calls between them are traced too); returns ``connector``."""
    if _tracer() is None:
        return connector
    attributes = {"dsar.system": system, "dsar.connector.kind": getattr(connector, "kind", "")}
    for operation in _OPERATIONS:
        method = getattr(connector, operation, None)
        if method is not None:
            setattr(connector, operation, _traced_operation(method, operation, attributes))
    return connector


def _traced_operation(method: Callable[..., Any], operation: str,
                      attributes: Mapping[str, Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        with span(f"dsar.connector.{operation}", attributes) as current:
            result = method(*args, **kwargs)
            if current is not None:
                names = sorted({e.collection for e in getattr(result, "evidence", ())})
                current.set_attribute("dsar.collections", names)
            return result

    return run

_ID_ARG = {"plan_request": "dsar.request_id", "assemble_request": "dsar.request_id",
           "send_message": "dsar.mail_id"}


def _id_attribute(actor_name: str) -> str:
    return _ID_ARG.get(actor_name, "dsar.task_id" if actor_name.startswith("run_task")
                       else "dsar.id")


class Tracing(dramatiq.Middleware):
    """A span around each processed message, attributes ids only (see the module docstring)."""

    def __init__(self) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = trace.get_tracer("dsar.workflows")
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        from opentelemetry import context

        attributes: dict[str, Any] = {
            "messaging.system": "dramatiq",
            "messaging.message.id": message.message_id,
            "messaging.destination.name": message.queue_name,
        }
        if message.args and isinstance(message.args[0], str | int):
            attributes[_id_attribute(message.actor_name)] = message.args[0]
        span = self._tracer.start_span(f"dsar.{message.actor_name}", attributes=attributes)
        token = context.attach(self._trace.set_span_in_context(span))
        self._local.current = (span, token)

    def after_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        from opentelemetry import context
        from opentelemetry.trace import Status, StatusCode

        current = getattr(self._local, "current", None)
        if current is None:
            return
        self._local.current = None
        span, token = current
        if exception is not None:
            span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
            span.set_attribute("error.type", type(exception).__name__)
        span.end()
        context.detach(token)

    after_skip_message = after_process_message


def install(broker: dramatiq.Broker) -> bool:
    """Add :class:`Tracing` to ``broker`` when OpenTelemetry is installed; return whether it
    was. Configures the OTLP exporter from the environment first (see the module docstring)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return False
    if (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        _configure_otlp(trace)
    broker.add_middleware(Tracing())
    return True


def _configure_otlp(trace: Any) -> None:
    if type(trace.get_tracer_provider()).__name__ != "ProxyTracerProvider":
        return  # the process configured its own provider: leave it
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not "
                    "installed; install dsar[otel]")
        return
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get(
        "OTEL_SERVICE_NAME", "dsar-worker")}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
