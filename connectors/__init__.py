"""Adapters to the systems that hold personal data.

Connectors know nothing of queues or requests. Given a system from the data map and the
subject's keys, a connector collects, erases and recounts, and reports evidence. The contract
is :class:`connectors.base.Connector`; :func:`open_connector` picks the implementation for a
system's ``kind``.
"""

from connectors.base import (
    CollectionSink,
    Connector,
    ConnectorContext,
    ConnectorResult,
    SubjectKeys,
    open_connector,
)

__all__ = [
    "CollectionSink",
    "Connector",
    "ConnectorContext",
    "ConnectorResult",
    "SubjectKeys",
    "open_connector",
]
