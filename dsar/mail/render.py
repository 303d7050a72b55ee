"""Rendering a message from its templates: ``mail/<kind>.txt.j2`` and ``mail/<kind>.html.j2``.

Subjects are here, one per kind. Text templates are rendered without escaping, HTML ones with.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

SUBJECTS = {
    "verification": "Please confirm your request to {controller}",
    "already_open": "Your request to {controller} is already open",
    "acknowledgement": "We have your request ({request_id})",
    "extension": "We need more time for your request ({request_id})",
    "completion": "Your data is ready ({request_id})",
    "erasure_confirmation": "Your data has been erased ({request_id})",
    "refusal": "About your request ({request_id})",
}
KIND_WORDS = {"access": "send you a copy of your personal data",
              "export": "send you your personal data to take elsewhere",
              "erasure": "erase your personal data"}

_html = Environment(loader=PackageLoader("dsar", "templates"), undefined=StrictUndefined,
                    autoescape=select_autoescape(["html.j2"]))
_text = Environment(loader=PackageLoader("dsar", "templates"), undefined=StrictUndefined,
                    autoescape=False, keep_trailing_newline=True)


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


def render(kind: str, context: dict[str, Any]) -> Rendered:
    """The message ``kind`` for ``context`` (request_id, controller, status_url, … per kind)."""
    subject = SUBJECTS[kind].format(**context)
    values = {"subject": subject, **context}
    return Rendered(subject, _text.get_template(f"mail/{kind}.txt.j2").render(values).strip()
                    + "\n", _html.get_template(f"mail/{kind}.html.j2").render(values))
