"""Fixtures for the portal: an App on a fresh SQLite state, a real local SMTP server."""

from __future__ import annotations

import email
import shutil
import socket
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from starlette.testclient import TestClient

from dsar.app import App
from dsar.db.models import MessageRow
from dsar.mail.send import send_message
from interfaces.portal import make_portal

DEMO_MAP = Path(__file__).resolve().parents[3] / "interfaces" / "demo" / "datamap.yaml"


class Inbox:
    """What the SMTP server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"

    def text(self, message: Message) -> str:
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                return part.get_payload(decode=True).decode()
        raise AssertionError("no text part")


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.url = f"smtp://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield handler
    controller.stop()


@pytest.fixture
def app(tmp_path: Path, inbox: Inbox) -> App:
    shutil.copyfile(DEMO_MAP, tmp_path / "datamap.yaml")
    return App.from_env({"DSAR_DATA_DIR": str(tmp_path), "DSAR_TIMEZONE": "Europe/Berlin",
                         "DSAR_SMTP_URL": inbox.url,  # type: ignore[attr-defined]
                         "DSAR_MAIL_FROM": "privacy@northwind.example",
                         "DSAR_PUBLIC_URL": "https://portal.example"})


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(make_portal(app, sweep_expired=False), base_url="https://portal.example",
                    follow_redirects=False) as test_client:
        yield test_client


def deliver(app: App) -> int:
    """Run the send_message actor's function for every unsent message, as the fleet would."""
    with app.db.session() as session:
        ids = [m.id for m in session.query(MessageRow).filter(MessageRow.sent_at.is_(None))]
    return sum(send_message(app, message_id) for message_id in ids)
