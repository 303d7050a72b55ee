"""The HTTP runtime: one httpx client per connector, interpreting a vendor definition's calls.

:class:`VendorClient` sends a :class:`~connectors.saas.definition.Call` with the account's
shared rate limit, retries and error mapping, and :meth:`VendorClient.items` walks a list
through its pages. The contract of :meth:`VendorClient.send`:

- 2xx: the response;
- 404 where the caller allows it (a finder's ``missing``, a list whose parent is gone, a
  delete of something already gone): ``None``;
- 401/403: :class:`~dsar.errors.ConnectorError` ``saas_refused_credential``, not transient,
  naming the credential's environment variable (an OAuth2 token is renewed once first);
- 429 and 5xx, and network errors: retried up to ``retries.attempts`` times with full jitter;
  ``Retry-After`` (seconds or an HTTP date) and ``X-RateLimit-Reset``/``RateLimit-Reset`` are
  honoured and, for 429, shared with every worker on the account through the limiter. When
  attempts run out: a *transient* ``ConnectorError`` with ``retry_after``;
- other statuses: a non-transient ``saas_vendor_error``.

Messages name the call by its path *template* (``/v1/customers/{item.id}``), never the filled
path, so no key value reaches an error, a log or evidence.
"""

from __future__ import annotations

import email.utils
import hashlib
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from connectors.saas.auth import Credentials, HeaderAuth, OAuth2ClientCredentials, refused
from connectors.saas.definition import Call, VendorDefinition
from connectors.saas.paging import Pager, Scope, get_path, render_parts
from connectors.saas.ratelimit import AccountLimiter
from dsar.errors import ConnectorError

RESET_HEADERS = ("retry-after", "x-ratelimit-reset", "ratelimit-reset")


def wait_from_headers(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait per ``Retry-After`` or a rate-limit reset header, if any. A reset value
    above 10⁹ is read as a Unix time, else as seconds."""
    for name in RESET_HEADERS:
        raw = headers.get(name)
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(raw) if name == "retry-after" else None
            if parsed is None:
                continue
            value = parsed.timestamp() - now
            return max(value, 0.0)
        return max(value - now, 0.0) if value > 1e9 else max(value, 0.0)
    return None


class VendorClient:
    """Calls to one vendor account. ``calls`` and ``throttled`` count requests sent and 429s
    received, for evidence counts and benchmarks."""

    def __init__(self, definition: VendorDefinition, system: str, base_url: str,
                 auth: HeaderAuth | OAuth2ClientCredentials, creds: Credentials,
                 limiter: AccountLimiter, *, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, timeout: float = 30.0) -> None:
        self.definition, self.system = definition, system
        self.auth, self.creds, self.limiter = auth, creds, limiter
        self.origin = urlsplit(base_url)
        self.base_url = base_url.rstrip("/") + "/"
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout,
                                 transport=transport,
                                 headers={"User-Agent": "dsar", **definition.headers})
        self._sleep = sleep
        self.calls = 0
        self.throttled = 0

    def close(self) -> None:
        self.http.close()

    def _error(self, call: Call, problem: str, fix: str, code: str, *, transient: bool = False,
               retry_after: float | None = None) -> ConnectorError:
        label = self.definition.label
        return ConnectorError(f"{label} {problem} ({call.method} {call.path})", fix,
                              system=self.system, code=code, transient=transient,
                              retry_after=retry_after)

    def _idempotency_key(self, method: str, path: str) -> str:
        # Stable across retries and worker restarts: the same write gets the same key.
        text = f"dsar:{self.definition.name}:{method}:{path}"
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def send(self, call: Call, scope: Scope, *, allow_missing: bool = False,
             params: Mapping[str, Any] | None = None, url: str | None = None,
             json_body: Any = None) -> httpx.Response | None:
        """Send ``call`` for ``scope`` (or fetch ``url``, a next-page link, absolute or a path
        on the base URL's host; ``params`` and ``json_body`` replace the call's own, for the
        next page); see the module docstring for what each answer becomes."""
        path, query, body, form = render_parts(call, scope, self.system)
        if params is not None:
            query = dict(params)
        if json_body is not None:
            body = json_body
        if url is not None:
            if url.startswith("/"):  # a path: on the base URL's host, never elsewhere
                url = urljoin(self.base_url, url)
            target = urlsplit(url)
            if (target.scheme, target.netloc) != (self.origin.scheme, self.origin.netloc):
                raise self._error(call, "sent a next-page link to another host",
                                  "report it; dsar never sends credentials elsewhere",
                                  "saas_foreign_link")
            path, query = url, None  # the link's own query string is the whole query
        headers: dict[str, str] = {}
        write = call.method != "GET"
        if write and self.definition.idempotency_header:
            headers[self.definition.idempotency_header] = self._idempotency_key(call.method, path)
        retries = self.definition.retries
        renewed = False
        last_wait: float | None = None
        for attempt in range(retries.attempts):
            self.limiter.acquire()
            headers.update(self.auth.headers(self.http))
            self.calls += 1
            try:
                response = self.http.request(call.method, path, params=query, headers=headers,
                                             json=body, data=form)
            except httpx.TransportError as exc:
                last_wait = self._backoff(attempt)
                if attempt + 1 < retries.attempts:
                    self._sleep(last_wait)
                    continue
                raise self._error(call, f"could not be reached ({type(exc).__name__})",
                                  "check the network and the vendor's status; the task is "
                                  "retried", "saas_unreachable", transient=True,
                                  retry_after=last_wait) from None
            status = response.status_code
            if status < 300:
                self._respect_remaining(response)
                return response
            if status in (401, 403):
                if self.auth.refreshable and not renewed:
                    renewed = True
                    self.auth.invalidate()
                    continue
                raise refused(self.system, self.creds, status)
            if status == 404 and allow_missing:
                return None
            if status == 429 or status >= 500:
                hinted = wait_from_headers(response.headers, time.time())
                last_wait = hinted if hinted is not None else self._backoff(attempt)
                last_wait = min(last_wait, retries.max_wait)
                if status == 429:
                    self.throttled += 1
                    self.limiter.pause(last_wait)
                elif attempt + 1 < retries.attempts:
                    self._sleep(last_wait)
                continue
            raise self._error(call, f"answered HTTP {status}",
                              "check the data map's system and the vendor definition",
                              "saas_vendor_error")
        raise self._error(call, f"kept failing after {retries.attempts} attempts "
                          "(rate limited or unavailable)", "the task is retried later",
                          "saas_throttled" if self.throttled else "saas_unavailable",
                          transient=True, retry_after=last_wait)

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, backoff·2^attempt], capped at ``max_wait``."""
        r = self.definition.retries
        return random.uniform(0, min(r.max_wait, r.backoff * 2 ** attempt))

    def _respect_remaining(self, response: httpx.Response) -> None:
        """A vendor that says no calls remain in its window is waited out by every worker."""
        for name in ("x-ratelimit-remaining", "ratelimit-remaining"):
            raw = response.headers.get(name)
            if raw is not None and raw.strip() == "0":
                wait = wait_from_headers(response.headers, time.time())
                if wait:
                    self.limiter.pause(min(wait, self.definition.retries.max_wait))
                return

    def json(self, call: Call, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise self._error(call, "answered with a body that is not JSON",
                              "check base_url_env points at the vendor's API",
                              "saas_vendor_error") from None

    def single(self, call: Call, scope: Scope, missing: bool = True) -> dict[str, Any] | None:
        """The one item ``call`` returns, or None (404, or a ``skip_when`` match)."""
        response = self.send(call, scope, allow_missing=missing)
        if response is None:
            return None
        body = get_path(self.json(call, response), call.items)
        if not isinstance(body, dict):
            raise self._error(call, "answered with something other than an object",
                              "correct the vendor definition", "saas_bad_definition")
        if call.skip_when and all(body.get(k) == v for k, v in call.skip_when.items()):
            return None
        return body

    def items(self, call: Call, scope: Scope, missing: bool = True) -> Iterator[dict[str, Any]]:
        """Every item of a list call, page by page (memory holds one page)."""
        if call.single:
            one = self.single(call, scope, missing)
            if one is not None:
                yield one
            return
        _, query, first_body, _ = render_parts(call, scope, self.system)
        pager = Pager(call.paging, query, first_body)
        previous: tuple[str | None, dict[str, Any]] | None = None
        while True:
            if previous == (pager.url, {**pager.params, "": pager.body}):
                raise self._error(call, "sent the same page twice", "correct 'paging' in the "
                                  "vendor definition", "saas_bad_definition")
            previous = (pager.url, {**pager.params, "": pager.body})
            response = self.send(call, scope, allow_missing=missing, params=pager.params,
                                 url=pager.url, json_body=pager.body)
            if response is None:
                return
            body = self.json(call, response)
            page = get_path(body, call.items)
            if not isinstance(page, list):
                raise self._error(call, f"answered without a list at {call.items!r}",
                                  "correct 'items' in the vendor definition",
                                  "saas_bad_definition")
            for item in page:
                if isinstance(item, dict) and not (
                        call.skip_when and all(item.get(k) == v
                                               for k, v in call.skip_when.items())):
                    yield item
            link = response.links.get("next", {}).get("url")
            if not pager.advance(body, page, link):
                return
