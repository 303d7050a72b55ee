"""Templates, response paths and pagination: the pure parts of interpreting a vendor call.

Nothing here does I/O. :func:`render_path` and :func:`render_params` fill a call's templates
from a :data:`Scope`; :func:`get_path` reads a dotted path from a JSON body; :class:`Pager`
turns one page's response into the next request (or the end of the list).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from connectors.saas.definition import PLACEHOLDER, Call, Paging
from dsar.errors import ConnectorError

SOQL_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n",
                              "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"})

Scope = Mapping[str, Any]
"""``value`` (a key value, a string) and ``each`` / ``parent`` / ``item`` (JSON objects)."""


def get_path(obj: Any, path: str | None) -> Any:
    """``obj["a"]["b"]`` for ``"a.b"``; None where a step is missing; ``obj`` for no path."""
    if not path:
        return obj
    for step in path.split("."):
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(step)
    return obj


def _filter(value: str, name: str) -> str:
    if name == "lower":
        return value.lower()
    if name == "escape_quotes":  # inside a quoted string of a search query language
        return value.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')
    if name == "soql":  # inside a SOQL string literal: every escape Salesforce defines
        return value.translate(SOQL_ESCAPES)
    if name == "md5_lower":
        return hashlib.md5(value.strip().lower().encode(), usedforsecurity=False).hexdigest()
    raise ValueError(name)  # pragma: no cover - definitions are validated


def _lookup(scope: Scope, ref: str) -> str:
    root, _, rest = ref.partition(".")
    value = scope.get(root)
    if rest:
        value = get_path(value, rest)
    if value is None or isinstance(value, Mapping | list):
        raise KeyError(ref)
    return str(value)


def render(text: str, scope: Scope, *, path: bool) -> str:
    """Fill ``text``'s placeholders. In a path each value is percent-encoded whole and may not
    be empty, ``.`` or ``..``: a value can never add or climb a path segment."""

    def one(match: Any) -> str:
        value = _lookup(scope, match.group(1))
        if match.group(2):
            value = _filter(value, match.group(2))
        if path:
            if value.strip() in ("", ".", ".."):
                raise ValueError(f"a value for {{{match.group(1)}}} is empty or a dot segment")
            return quote(value, safe="")
        return value

    return PLACEHOLDER.sub(one, text)


def _render_json(value: Any, scope: Scope) -> Any:
    if isinstance(value, str):
        return render(value, scope, path=False)
    if isinstance(value, dict):
        return {k: _render_json(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_json(v, scope) for v in value]
    return value


def render_parts(call: Call, scope: Scope, system: str
                 ) -> tuple[str, dict[str, Any], Any, dict[str, str] | None]:
    """Path, query, JSON body and form of ``call`` for ``scope``, every string template
    filled; a ConnectorError (nothing sent) when a value is unusable or a field the template
    names is missing."""
    try:
        path = render(call.path, scope, path=True)
        params = {k: render(v, scope, path=False) for k, v in call.params.items()}
        body = _render_json(call.json_body, scope)
        form = ({k: render(v, scope, path=False) for k, v in call.form.items()}
                if call.form is not None else None)
    except KeyError as exc:
        raise ConnectorError(
            f"the vendor's answer has no field {exc.args[0]!r} needed by {call.path}",
            "the vendor may have changed its API; correct the vendor definition",
            system=system, code="saas_bad_definition") from None
    except ValueError as exc:
        raise ConnectorError(f"{exc}; nothing was sent",
                             "correct the key value of the request", system=system,
                             code="saas_unsafe_value") from None
    return path, params, body, form


def _set_path(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the dotted ``path`` set to ``value``."""
    head, _, rest = path.partition(".")
    out = dict(body)
    out[head] = _set_path(dict(out.get(head) or {}), rest, value) if rest else value
    return out


class Pager:
    """Follows one list through its pages per :class:`Paging`. ``params`` is the query and
    ``body`` the JSON body of the next request (``location: body`` pages in the body)."""

    def __init__(self, paging: Paging, params: dict[str, Any], body: Any = None) -> None:
        self.paging = paging
        self.params = dict(params)
        self.body = body
        self.url: str | None = None
        if paging.size_param:
            self._set(paging.size_param, paging.size)
        if paging.style == "offset":
            self._set(paging.param or "", 0)
        elif paging.style == "page":
            self._set(paging.param or "", paging.first_page)

    def _set(self, name: str, value: Any) -> None:
        if self.paging.location == "body":
            self.body = _set_path(self.body if isinstance(self.body, dict) else {}, name, value)
        else:
            self.params[name] = str(value)

    def _get(self, name: str) -> Any:
        if self.paging.location == "body":
            return get_path(self.body, name)
        return self.params[name]

    def advance(self, body: Any, items: Sequence[Any], next_link: str | None) -> bool:
        """Prepare the next request from this page; False when the list has ended."""
        p = self.paging
        if p.style == "none" or (not items and p.style != "link"):
            return False
        if p.style == "starting_after":
            if not get_path(body, p.has_more):
                return False
            last = items[-1].get(p.id_field) if isinstance(items[-1], Mapping) else None
            if last is None:
                return False
            self._set(p.param or "", str(last))
            return True
        if p.style == "cursor":
            cursor = get_path(body, p.next)
            if not cursor:
                return False
            self._set(p.param or "", str(cursor))
            return True
        if p.style == "offset":
            offset = int(self._get(p.param or "")) + len(items)
            total = get_path(body, p.total) if p.total else None
            if len(items) < p.size or (isinstance(total, int) and offset >= total):
                return False
            self._set(p.param or "", offset)
            return True
        if p.style == "page":
            if len(items) < p.size:
                return False
            self._set(p.param or "", int(self._get(p.param or "")) + 1)
            return True
        if p.next:  # link, read from the body
            if get_path(body, p.has_more) is False:
                return False
            found = get_path(body, p.next)
            next_link = found if isinstance(found, str) else None
        if not next_link:
            return False
        self.url, self.params = next_link, {}
        return True
