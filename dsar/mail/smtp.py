"""Sending one message by SMTP as the settings say (DSAR_SMTP_URL, STARTTLS, credentials)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import urlparse

from dsar.errors import DsarError
from dsar.settings import Settings

TIMEOUT = 30


class MailNotConfigured(DsarError):
    """DSAR_SMTP_URL is not set: messages wait in the outbox until it is."""


def send(settings: Settings, message: EmailMessage) -> None:
    """Hand ``message`` to the SMTP server; raises on any failure (the actor retries)."""
    if not settings.smtp_url:
        raise MailNotConfigured("no mail server is configured, so the message was not sent",
                                "set DSAR_SMTP_URL=smtp://host:port")
    url = urlparse(settings.smtp_url)
    host = url.hostname or "localhost"
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, url.port or 465, timeout=TIMEOUT,
                                                context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(host, url.port or 25, timeout=TIMEOUT)
    with client:
        if settings.smtp_starttls and url.scheme == "smtp":
            client.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password or "")
        client.send_message(message)
