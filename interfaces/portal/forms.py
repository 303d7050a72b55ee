"""Reading a form post: a size limit that cannot be skipped, strict UTF-8, errors per field.

:func:`read_form` reads ``application/x-www-form-urlencoded`` bodies only, counting the bytes
as they arrive, so a missing, negative or false ``Content-Length`` or a chunked body cannot get
past :data:`MAX_BODY`. A field whose bytes are not UTF-8 is not turned into replacement
characters: it becomes an error tied to that field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from starlette.requests import Request

from dsar.locale import N_

MAX_BODY = 16 * 1024
MAX_FIELD = 2048


class BodyRefused(Exception):
    """The body cannot be read as a form; ``status`` and ``message`` say why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Form:
    """The fields of a post (first value of each, stripped) and the errors found so far."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        return self.values.get(name, "")

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, at most ``limit`` bytes whatever the headers claim; else :class:`BodyRefused`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BodyRefused(400, N_("The request's Content-Length is not a number."))
        if int(declared) > limit:
            raise BodyRefused(413, N_("The form was too large."))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyRefused(413, N_("The form was too large."))
    return bytes(body)


def parse_form(body: bytes, max_field: int = MAX_FIELD) -> Form:
    """Fields of an urlencoded body; a field that is not UTF-8 or too long is an error."""
    form = Form()
    for pair in body.split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        try:
            name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            continue  # no field of ours has such a name
        if name in form.values or name in form.errors:
            continue
        value_bytes = unquote_to_bytes(raw_value.replace(b"+", b" "))
        if len(value_bytes) > max_field:
            form.fail(name, N_("This is too long."))
            continue
        try:
            value = value_bytes.decode("utf-8")
        except UnicodeDecodeError:
            form.fail(name, N_("This contains characters we cannot read. Please type it again."))
            continue
        if any(ord(c) < 32 and c not in "\t\r\n" for c in value):
            form.fail(name, N_("This contains control characters. Please type it again."))
            continue
        form.values[name] = value.strip()
    return form


async def read_form(request: Request, limit: int = MAX_BODY) -> Form:
    """:func:`read_body` then :func:`parse_form`; only urlencoded forms are accepted."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BodyRefused(415, N_("Please send the form from our web page."))
    return parse_form(await read_body(request, limit), MAX_FIELD if limit == MAX_BODY else limit)
