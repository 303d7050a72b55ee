"""Credentials: from environment variables named in the data map to request headers.

:class:`Credentials` holds the secrets read from ``context.environ`` (never from the data map
file) and the *names* of the variables, so errors can say which variable to fix without ever
printing a secret. :func:`make_auth` builds the header source for a vendor's ``auth`` block;
OAuth2 client-credentials tokens are fetched on first use, renewed 60 seconds before they
expire and once more when the vendor answers 401.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.saas.definition import Auth
from dsar.errors import ConnectorError


@dataclass(frozen=True)
class Credentials:
    """The secret (``token``) and, for basic and OAuth2, the user or client id."""

    token: str
    token_env: str
    client_id: str | None = None
    client_id_env: str | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"Credentials(token_env={self.token_env!r}, client_id_env={self.client_id_env!r})"


class HeaderAuth:
    """Static headers (bearer, basic, API key header)."""

    refreshable = False

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def headers(self, client: httpx.Client) -> dict[str, str]:
        return dict(self._headers)

    def invalidate(self) -> None:
        """Nothing to renew."""


class OAuth2ClientCredentials:
    """A bearer token from the client-credentials grant (RFC 6749 §4.4), cached per instance."""

    refreshable = True

    def __init__(self, spec: Auth, creds: Credentials, system: str) -> None:
        if not creds.client_id:
            raise ConnectorError(
                "OAuth2 client credentials need a client id",
                "set 'client_id_env' on the system in the data map",
                system=system, code="saas_missing_credential")
        self.spec, self.creds, self.system = spec, creds, system
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def headers(self, client: httpx.Client) -> dict[str, str]:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._fetch(client)
            return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self, client: httpx.Client) -> None:
        data = {"grant_type": "client_credentials", "client_id": self.creds.client_id or "",
                "client_secret": self.creds.token}
        if self.spec.scope:
            data["scope"] = self.spec.scope
        try:
            response = client.post(self.spec.token_url or "", data=data)
        except httpx.HTTPError as exc:
            raise ConnectorError(
                f"cannot reach the OAuth2 token endpoint ({type(exc).__name__})",
                "check the network and the vendor's status", system=self.system,
                code="saas_unreachable", transient=True) from None
        if response.status_code in (400, 401, 403):
            raise refused(self.system, self.creds, response.status_code)
        if response.status_code >= 300:
            raise ConnectorError(
                f"the OAuth2 token endpoint answered HTTP {response.status_code}",
                "retry later", system=self.system, code="saas_vendor_error",
                transient=response.status_code >= 500)
        body: Any = response.json()
        self._token = str(body["access_token"])
        self._expires = time.monotonic() + max(float(body.get("expires_in", 3600)) - 60, 1)


def refused(system: str, creds: Credentials, status: int) -> ConnectorError:
    """The needs-attention error for a credential the vendor refuses (never retried)."""
    names = " and ".join(n for n in (creds.client_id_env, creds.token_env) if n)
    return ConnectorError(
        f"the vendor refused the credential in {names} (HTTP {status})",
        f"set {names} to a valid credential with read and delete permission, then resume",
        system=system, code="saas_refused_credential", transient=False)


def make_auth(spec: Auth, creds: Credentials, system: str) -> HeaderAuth | OAuth2ClientCredentials:
    """The header source for ``spec``."""
    if spec.type == "bearer":
        return HeaderAuth({"Authorization": f"Bearer {creds.token}"})
    if spec.type == "api_key_header":
        return HeaderAuth({spec.header: creds.token})
    if spec.type == "basic":
        user = creds.client_id or spec.username or ""
        pair = f"{creds.token}:" if spec.token_as == "username" else f"{user}:{creds.token}"
        return HeaderAuth({"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()})
    return OAuth2ClientCredentials(spec, creds, system)
