"""The broker, chosen by ``DSAR_BROKER_URL``.

- ``amqp://…``: RabbitMQ, publisher confirms on, queues declared with message priorities so the
  earliest deadline goes first;
- ``redis://…``: Redis;
- ``memory://``: Dramatiq's in-process stub broker; workers run as threads of the same process.

Messages are acknowledged after the actor returns (Dramatiq's default), so a worker that dies
mid-task leaves its message to be redelivered.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from dsar.errors import InvalidInput

#: One queue per connector kind, so a slow SaaS API cannot starve database work.
QUEUES = ("control", "sql", "s3", "saas")
MAX_PRIORITY = 10


def _middleware() -> list[dramatiq.Middleware]:
    # Retries cover crashes of our own code (a dropped state-database connection); connector
    # failures are retried by the task runner itself, with waits kept in the database.
    return [
        AgeLimit(), TimeLimit(time_limit=20 * 60 * 1000), ShutdownNotifications(),
        Callbacks(), Pipelines(), CurrentMessage(),
        Retries(max_retries=20, min_backoff=500, max_backoff=30_000),
    ]


def make_broker(url: str) -> dramatiq.Broker:
    """A broker for ``url`` with dsar's middleware; raises InvalidInput for an unknown scheme."""
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, confirm_delivery=True, max_priority=MAX_PRIORITY,
                              middleware=_middleware())
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, middleware=_middleware(), namespace="dsar")
    if url.startswith("memory://"):
        return StubBroker(middleware=_middleware())
    raise InvalidInput(
        f"DSAR_BROKER_URL={url!r} is not a broker dsar can use",
        "use amqp://user:pass@host:5672/ (RabbitMQ), redis://host:6379/0 or memory://",
    )
