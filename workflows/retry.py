"""Which failures are worth retrying, and how long to wait.

Transient: connection refused or dropped, timeouts, deadlocks and serialization failures, HTTP
429 and 5xx (honouring Retry-After), S3 throttling. Everything else is permanent and puts the
request in ``needs attention`` with the reason. Waits grow exponentially with full jitter and
are kept in the database (the outbox's ``available_at``), never held by the broker.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from dsar.errors import ConnectorError, DsarError

MAX_ATTEMPTS = 8
BASE_DELAY = 1.0
MAX_DELAY = 15 * 60.0


@dataclass(frozen=True)
class Failure:
    """A classified failure: ``code`` for evidence and metrics, ``reason`` for people."""

    code: str
    reason: str
    transient: bool
    retry_after: float | None = None


def classify(exc: BaseException) -> Failure:
    """Turn an exception from a connector call into a Failure. Never includes row data."""
    if isinstance(exc, ConnectorError):
        return Failure(exc.code, exc.one_line(), exc.transient, exc.retry_after)
    if isinstance(exc, DsarError):
        return Failure(type(exc).__name__.lower(), exc.one_line(), False)
    if isinstance(exc, OperationalError | PoolTimeout):
        return Failure("database_unavailable", "a database connection failed or timed out",
                       True)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Failure("database_connection_lost", "a database connection was lost", True)
    if isinstance(exc, ConnectionError | TimeoutError):
        return Failure("connection_error", f"{type(exc).__name__}", True)
    return Failure("internal_error", f"unexpected {type(exc).__name__}; see the worker log",
                   False)


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` >= 1): full jitter."""
    if retry_after is not None:
        return min(MAX_DELAY, max(retry_after, 0.0))
    ceiling = min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)
