"""The ``send_message`` actor: one queued message to the person, sent once (dsar.mail.send)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq

from dsar.app import App
from dsar.mail.queue import ACTOR, QUEUE
from dsar.mail.send import send_message


def declare(broker: dramatiq.Broker, app_factory: Callable[[], App]) -> dict[str, Any]:
    """Declare ``send_message`` on ``broker``; a failure raises and the broker retries it."""

    def send(message_id: int) -> None:
        send_message(app_factory(), message_id)

    return {ACTOR: dramatiq.actor(send, broker=broker, queue_name=QUEUE, actor_name=ACTOR,
                                  max_retries=20, min_backoff=5_000, max_backoff=600_000)}
