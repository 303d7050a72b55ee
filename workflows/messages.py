"""The ``send_message`` actor: one queued message to the person, sent once (dsar.mail.send)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq

from dsar.app import App
from dsar.errors import DsarError
from dsar.mail.queue import ACTOR, QUEUE
from dsar.mail.send import send_message
from dsar.mail.smtp import MailNotConfigured

log = logging.getLogger("dsar.mail")


def declare(broker: dramatiq.Broker, app_factory: Callable[[], App]) -> dict[str, Any]:
    """Declare ``send_message`` on ``broker``; a failure raises and the broker retries it,
    except one no retry mends (no mail server configured, say): then the message waits,
    unsent, until the housekeeping queues it again (:func:`dsar.mail.queue.requeue_unsent`).
    Either way the request's state is not touched: a message is not the request's work."""

    def send(message_id: int) -> None:
        try:
            send_message(app_factory(), message_id)
        except MailNotConfigured:  # the embedded default: no mail server, and that is fine
            log.info("message %d waits: no mail server is configured", message_id)
        except DsarError as err:
            log.warning("message %d waits: %s", message_id, type(err).__name__)

    return {ACTOR: dramatiq.actor(send, broker=broker, queue_name=QUEUE, actor_name=ACTOR,
                                  max_retries=20, min_backoff=5_000, max_backoff=600_000)}
