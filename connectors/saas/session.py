"""From a data map system and the environment to a ready :class:`VendorClient`.

Resolves the credential variables (a missing one is a non-transient ``ConnectorError``
``saas_missing_credential`` naming the variable), the base URL (``base_url_env``, else the
``region``'s URL, else the region read from the credential, else the vendor's default), the
auth header source and the account's shared rate limiter. Nothing is sent here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx

from connectors.base import ConnectorContext
from connectors.saas.auth import Credentials, make_auth
from connectors.saas.definition import RateLimit, VendorDefinition
from connectors.saas.ratelimit import AccountLimiter, storage_url
from connectors.saas.runtime import VendorClient
from dsar.datamap.schema import SaaSSystem
from dsar.errors import ConnectorError


def credentials(definition: VendorDefinition, system: SaaSSystem,
                context: ConnectorContext) -> Credentials:
    """The secrets named by the system, read from ``context.environ``."""
    def need(var: str, what: str) -> str:
        value = (context.environ.get(var) or "").strip()
        if not value:
            raise ConnectorError(
                f"the environment variable {var} is not set",
                f"set {var} to the {definition.label} {what} of this account",
                system=system.name, code="saas_missing_credential")
        return value

    token = need(system.token_env, "API key or secret")
    client_id = need(system.client_id_env, "client id") if system.client_id_env else None
    return Credentials(token, system.token_env, client_id, system.client_id_env)


def base_url(definition: VendorDefinition, system: SaaSSystem, context: ConnectorContext,
             creds: Credentials) -> str:
    """Where the account's API is, per the rules in the module docstring."""
    if system.base_url_env:
        override = (context.environ.get(system.base_url_env) or "").strip()
        if override:
            return override
    region = system.region
    if region is not None and region in definition.regions:
        return definition.regions[region]
    if region is None and definition.region_from_credential:
        match = re.search(definition.region_from_credential, creds.token)
        region = match.group("region") if match else None
        if region is None:
            raise ConnectorError(
                f"the {definition.label} key in {creds.token_env} does not end in its data "
                "centre", f"set {creds.token_env} to the whole key (e.g. ...-us6) or give "
                "'region' in the data map", system=system.name, code="saas_no_region")
    if "{region}" in definition.base_url:
        if region is None:
            raise ConnectorError(f"{definition.label} needs a region",
                                 "give 'region' on the system in the data map",
                                 system=system.name, code="saas_no_region")
        if not re.fullmatch(r"[a-z0-9-]+", region):
            raise ConnectorError(f"region {region!r} is not a host name part",
                                 "give the region as the vendor names it (e.g. us6)",
                                 system=system.name, code="saas_no_region")
        return definition.base_url.replace("{region}", region)
    if region is not None and definition.regions:
        raise ConnectorError(f"{definition.label} has no region {region!r}",
                             f"use one of: {', '.join(definition.regions)}",
                             system=system.name, code="saas_no_region")
    return definition.base_url


def open_client(definition: VendorDefinition, system: SaaSSystem, context: ConnectorContext,
                limit: RateLimit | None = None, *,
                transport: httpx.BaseTransport | None = None,
                sleep: Callable[[float], None] = time.sleep) -> VendorClient:
    """A client for the account; the limiter is keyed by vendor and a keyed hash of the
    credential, so every worker using the same account shares one budget."""
    creds = credentials(definition, system, context)
    url = base_url(definition, system, context, creds)
    account = f"{definition.name}:{context.keyed_hash(creds.token)[:20]}"
    limiter = AccountLimiter(storage_url(context.environ), account,
                             limit or definition.rate_limit, sleep=sleep)
    auth_url = definition.auth.token_url
    spec = definition.auth
    if auth_url and auth_url.startswith("/"):
        spec = spec.model_copy(update={"token_url": url.rstrip("/") + auth_url})
    return VendorClient(definition, system.name, url, make_auth(spec, creds, system.name),
                        creds, limiter, transport=transport, sleep=sleep)
