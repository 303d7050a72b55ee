"""Rendering a message from its templates: ``mail/<kind>.txt.j2`` and ``mail/<kind>.html.j2``.

Subjects are here, one per kind. Text templates are rendered without escaping, HTML ones with;
both in the message's language (:mod:`dsar.locale`).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from dsar.locale import N_, environment, translations

SUBJECTS = {
    "verification": N_("Please confirm your request to {controller}"),
    "already_open": N_("Your request to {controller} is already open"),
    "acknowledgement": N_("We have your request ({request_id})"),
    "extension": N_("We need more time for your request ({request_id})"),
    "completion": N_("Your data is ready ({request_id})"),
    "erasure_confirmation": N_("Your data has been erased ({request_id})"),
    "refusal": N_("About your request ({request_id})"),
}
KIND_WORDS = {"access": N_("send you a copy of your personal data"),
              "export": N_("send you your personal data to take elsewhere"),
              "erasure": N_("erase your personal data")}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str

    def email(self, sender: str, recipient: str, message_id: str) -> EmailMessage:
        """As a MIME message (text with an HTML alternative). ``message_id`` is the same on
        every attempt, so a mail system that receives a retried message can drop the copy."""
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = self.subject, sender, recipient
        message["Message-ID"] = message_id
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message


def render(kind: str, context: dict[str, Any], lang: str = "en") -> Rendered:
    """The message ``kind`` for ``context`` (request_id, controller, status_url, … per kind),
    in ``lang``; ``context["kind_words"]`` is translated here."""
    _ = translations(lang).gettext
    values = {"name": None, **context}
    values["kind_words"] = _(values["kind_words"])
    subject = _(SUBJECTS[kind]).format(**values)
    values["subject"] = subject
    text = environment(lang, "text").get_template(f"mail/{kind}.txt.j2").render(values)
    html = environment(lang, "mail").get_template(f"mail/{kind}.html.j2").render(values)
    return Rendered(subject, text.strip() + "\n", html)
