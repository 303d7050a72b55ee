"""API tokens for authorised agents: issued, listed and revoked by the privacy team.

A token is ``dsar_agent_`` and 43 random URL-safe characters (256 bits), shown once when it is
issued; the state database keeps its SHA-256 only (a high-entropy token needs no slow hash).
:func:`authenticate` finds the agent a ``Bearer`` token belongs to, or None for a missing,
unknown or revoked one. For the Data Rights Protocol an agent also needs its Ed25519 verify key
registered (:func:`set_verify_key`): /drp refuses requests not signed with it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from dsar.app import App
from dsar.db.models import AgentToken
from dsar.errors import InvalidInput, NotFound
from interfaces.portal.drp_signing import parse_verify_key

PREFIX = "dsar_agent_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


@dataclass(frozen=True)
class Agent:
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    verify_key: str | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(app: App, name: str, verify_key: str | None = None) -> str:
    """A new token for the agent ``name`` (unique); returned once, never stored.

    ``verify_key`` (base64 or hex, checked) is the agent's DRP signing key's public half."""
    key = parse_verify_key(verify_key) if verify_key is not None else None
    if not NAME.match(name):
        raise InvalidInput(f"agent name {name!r} is not usable",
                           "use up to 64 letters, digits, spaces, dots, dashes or underscores")
    token = PREFIX + secrets.token_urlsafe(32)
    with app.db.session() as session:
        if session.get(AgentToken, name) is not None:
            raise InvalidInput(f"an agent named {name!r} already has a token",
                               f"revoke it first (dsar agents revoke {name!r}) or pick another "
                               "name")
        session.add(AgentToken(name=name, token_hash=_hash(token), created_at=app.now(),
                               last_used_at=None, revoked_at=None, verify_key=key))
    return token


def set_verify_key(app: App, name: str, verify_key: str) -> str:
    """Register (or replace) the agent's DRP verify key; returns it as stored (base64)."""
    key = parse_verify_key(verify_key)
    with app.db.session() as session:
        row = session.get(AgentToken, name)
        if row is None:
            raise NotFound(f"no agent named {name!r}", "see `dsar agents list`")
        row.verify_key = key
    return key


def verify_key_of(app: App, name: str) -> str | None:
    """The agent's registered DRP verify key (base64), or None."""
    with app.db.session() as session:
        row = session.get(AgentToken, name)
        return row.verify_key if row is not None else None


def revoke(app: App, name: str) -> None:
    """Stop the agent's token working (kept on record, so the name is not reused)."""
    with app.db.session() as session:
        row = session.get(AgentToken, name)
        if row is None:
            raise NotFound(f"no agent named {name!r}", "see `dsar agents list`")
        row.revoked_at = row.revoked_at or app.now()


def list_agents(app: App) -> list[Agent]:
    with app.db.session() as session:
        return [Agent(r.name, r.created_at, r.last_used_at, r.revoked_at, r.verify_key) for r in
                session.scalars(sa.select(AgentToken).order_by(AgentToken.name))]


def authenticate(app: App, authorization: str | None) -> str | None:
    """The agent named by an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(PREFIX) or len(token) > 200:
        return None
    with app.db.session() as session:
        row = session.scalars(sa.select(AgentToken).where(
            AgentToken.token_hash == _hash(token))).first()
        if row is None or row.revoked_at is not None:
            return None
        row.last_used_at = app.now()
        return row.name
