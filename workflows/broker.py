"""The broker, chosen by ``DSAR_BROKER_URL``.

- ``amqp://…``: RabbitMQ, publisher confirms on, queues declared with message priorities so the
  earliest deadline goes first;
- ``redis://…``: Redis;
- ``memory://``: Dramatiq's in-process stub broker; workers run as threads of the same process.

Messages are acknowledged after the actor returns (Dramatiq's default), so a worker that dies
mid-task leaves its message to be redelivered: RabbitMQ does so when the dead worker's
connection closes; on Redis, :func:`requeue_dead_workers` gives a dead worker's messages back
(Dramatiq does it only during rare random maintenance), and every worker process runs it every
:data:`REDIS_MAINTENANCE_SECONDS`, so a message a killed worker held is redelivered within
:data:`REDIS_HEARTBEAT_SECONDS` plus that interval.

An error that cannot succeed on retry (:func:`permanent`: a :class:`~dsar.errors.DsarError`
such as a master key that cannot decrypt the data, or a data map error) is not retried by
Dramatiq; :class:`workflows.runtime.PermanentErrors` puts the request in ``needs attention``.
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

from dsar.errors import DsarError, IllegalTransition, InvalidInput

#: One queue per connector kind, so a slow SaaS API cannot starve database work.
QUEUES = ("control", "sql", "s3", "saas")
MAX_PRIORITY = 10
MAX_RETRIES = 20
REDIS_HEARTBEAT_SECONDS = 15
"""A Redis worker process silent this long is taken for dead and its messages are given back.
Every live process heartbeats every :data:`REDIS_MAINTENANCE_SECONDS` (the maintenance call
itself is a heartbeat), so a busy one is never mistaken for a dead one."""
REDIS_MAINTENANCE_SECONDS = 5.0


def permanent(exc: BaseException) -> bool:
    """True for an error that will fail the same way on every retry: a problem a person must fix
    (:class:`~dsar.errors.DsarError`), unless it says it is transient. A lifecycle race
    (:class:`~dsar.errors.IllegalTransition`) is not: the retry sees the new state."""
    return (isinstance(exc, DsarError) and not isinstance(exc, IllegalTransition)
            and not getattr(exc, "transient", False))


def _retry_when(retries: int, exc: BaseException) -> bool:
    return retries < MAX_RETRIES and not permanent(exc)


def _middleware() -> list[dramatiq.Middleware]:
    # Retries cover crashes of our own code (a dropped state-database connection); connector
    # failures are retried by the task runner itself, with waits kept in the database.
    return [
        AgeLimit(), TimeLimit(time_limit=20 * 60 * 1000), ShutdownNotifications(),
        Callbacks(), Pipelines(), CurrentMessage(),
        Retries(min_backoff=500, max_backoff=30_000, retry_when=_retry_when),
    ]


def make_broker(url: str) -> dramatiq.Broker:
    """A broker for ``url`` with dsar's middleware; raises InvalidInput for an unknown scheme."""
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, confirm_delivery=True, max_priority=MAX_PRIORITY,
                              middleware=_middleware())
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, middleware=_middleware(), namespace="dsar",
                           heartbeat_timeout=REDIS_HEARTBEAT_SECONDS * 1000)
    if url.startswith("memory://"):
        return StubBroker(middleware=_middleware())
    raise InvalidInput(
        f"DSAR_BROKER_URL={url!r} is not a broker dsar can use",
        "use amqp://user:pass@host:5672/ (RabbitMQ), redis://host:6379/0 or memory://",
    )


def requeue_dead_workers(broker: dramatiq.Broker) -> None:
    """On Redis, give the unacknowledged messages of worker processes whose heartbeat stopped
    back to their queues (and refresh this process's heartbeat); a no-op on other brokers.

    Dramatiq's Redis broker does this per queue in its dispatch script, but only on a random
    one in a thousand commands; this runs that maintenance on every queue and delay queue."""
    from dramatiq.brokers.redis import RedisBroker

    if not isinstance(broker, RedisBroker):
        return
    from dramatiq.common import current_millis, dq_name

    dispatch = broker.scripts["dispatch"]
    for queue in sorted(broker.get_declared_queues()):
        for name in (queue, dq_name(queue)):
            dispatch(keys=[broker.namespace],
                     args=["qsize", current_millis(), name, broker.broker_id,
                           broker.heartbeat_timeout, broker.dead_message_ttl, 1,
                           broker._max_unpack_size()])
