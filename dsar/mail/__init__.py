"""Messages to the person who asked: queued through the outbox, rendered, sent by SMTP.

    queue_message(session, app, request, kind) -> MessageRow     (dsar.mail.queue)
    send_message(app, message_id) -> bool                          (dsar.mail.send)
    render(kind, context, lang) -> Rendered (subject, text, html)  (dsar.mail.render)
    start/check a verification: dsar.mail.verification

A message row is unique per request and kind and carries no content; the actor renders it from
the request when it sends it, stamps ``sent_at`` and writes an audit event without content.
"""

from dsar.mail.queue import KINDS, queue_message

__all__ = ["KINDS", "queue_message"]
