"""The privacy team's accounts for the portal's staff area: users, sign-in, sessions, audit.

- Users (``dsar staff add|passwd|remove|list``): a name and an argon2id hash of the password
  (argon2-cffi's defaults, RFC 9106's second recommended profile); the password itself is never
  stored or logged. A password has at least :data:`MIN_PASSWORD` characters.
- Sign-in: :func:`sign_in` checks the password (a missing user costs the same hash as a present
  one) and returns a new session token. After :data:`MAX_FAILURES` failures in a row the
  account is locked for :data:`LOCK_FOR`, even for the right password. Every attempt, whatever
  its outcome, is a ``staff_events`` row.
- Sessions live in the database (``staff_sessions``: the token's SHA-256 only): they end after
  :data:`IDLE_TIMEOUT` without use or :data:`MAX_AGE` in all, at sign-out, and when the user's
  password changes or the user is removed.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from dsar.app import App
from dsar.db.models import StaffEvent, StaffSession, StaffUser
from dsar.errors import InvalidInput, NotFound

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
IDLE_TIMEOUT = timedelta(minutes=30)
MAX_AGE = timedelta(hours=12)
_HASHER = PasswordHasher()  # its parameters only; nothing is hashed at import


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password, made on first use and the same for the process: verified
    when the name is unknown, so that takes as long as for a known one."""
    return _HASHER.hash(secrets.token_urlsafe(16))


class SignInRefused(Exception):
    """Sign-in failed; ``locked`` says whether it was because the account is locked."""

    def __init__(self, locked: bool) -> None:
        super().__init__("locked" if locked else "wrong name or password")
        self.locked = locked


@dataclass(frozen=True)
class StaffAccount:
    name: str
    created_at: datetime
    password_changed_at: datetime
    locked_until: datetime | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidInput(f"staff user name {name!r} is not usable",
                           "use 1 to 64 letters, digits and . _ @ -, starting with a letter "
                           "or digit")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password has {len(password)} characters, fewer than "
                           f"{MIN_PASSWORD}", f"choose one of at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("the password is too long",
                           f"choose one of at most {MAX_PASSWORD} characters")
    return password


def add_event(session: Session, now: datetime, actor: str, event: str,
              request_id: str | None = None, detail: str | None = None) -> None:
    """Append a line to the staff audit trail, in ``session``'s transaction."""
    session.add(StaffEvent(at=now, actor=actor[:64], event=event, request_id=request_id,
                           detail=detail))


def add_user(app: App, name: str, password: str) -> None:
    """Create user ``name``; refused if the name is taken or the password too short."""
    check_name(name)
    hashed = _HASHER.hash(check_password(password))
    now = app.now()
    with app.db.session() as session:
        if session.get(StaffUser, name) is not None:
            raise InvalidInput(f"staff user {name!r} exists already",
                               f"change the password with `dsar staff passwd {name}`")
        session.add(StaffUser(name=name, password_hash=hashed, created_at=now,
                              password_changed_at=now, failed_sign_ins=0, locked_until=None))
        add_event(session, now, name, "user_added")


def set_password(app: App, name: str, password: str) -> None:
    """Replace ``name``'s password, unlock the account and end its sessions."""
    hashed = _HASHER.hash(check_password(password))
    now = app.now()
    with app.db.session() as session:
        user = _user(session, name)
        user.password_hash, user.password_changed_at = hashed, now
        user.failed_sign_ins, user.locked_until = 0, None
        session.execute(sa.delete(StaffSession).where(StaffSession.user_name == name))
        add_event(session, now, name, "password_changed")


def remove_user(app: App, name: str) -> None:
    """Delete user ``name`` and end its sessions; the audit trail keeps its events."""
    now = app.now()
    with app.db.session() as session:
        user = _user(session, name)
        session.execute(sa.delete(StaffSession).where(StaffSession.user_name == name))
        session.delete(user)
        add_event(session, now, name, "user_removed")


def list_users(app: App) -> list[StaffAccount]:
    with app.db.session() as session:
        return [StaffAccount(u.name, u.created_at, u.password_changed_at, u.locked_until)
                for u in session.scalars(sa.select(StaffUser).order_by(StaffUser.name))]


def _user(session: Session, name: str) -> StaffUser:
    user = session.get(StaffUser, name)
    if user is None:
        raise NotFound(f"no staff user {name!r}", "see `dsar staff list` for the names")
    return user


def sign_in(app: App, name: str, password: str) -> str:
    """A new session token for ``name``, or :class:`SignInRefused`; audited either way."""
    now = app.now()
    with app.db.session() as session:  # the refusals' events are committed, then raised
        user = session.get(StaffUser, name) if NAME.fullmatch(name) else None
        if user is not None and user.locked_until is not None and user.locked_until > now:
            add_event(session, now, name, "sign_in_refused", detail="account locked")
            refused = SignInRefused(locked=True)
        elif user is None or not _verify(user.password_hash, password):
            if user is None:
                _verify(_dummy_hash(), password)  # the same time as for a known name
            else:
                user.failed_sign_ins += 1
            add_event(session, now, name[:64] or "-", "sign_in_failed",
                      detail="unknown user" if user is None else "wrong password")
            if user is not None and user.failed_sign_ins >= MAX_FAILURES:
                user.failed_sign_ins, user.locked_until = 0, now + LOCK_FOR
                add_event(session, now, name, "account_locked",
                          detail=f"{MAX_FAILURES} failed sign-ins in a row")
            refused = SignInRefused(locked=False)
        else:
            if _HASHER.check_needs_rehash(user.password_hash):
                user.password_hash = _HASHER.hash(password)
            user.failed_sign_ins, user.locked_until = 0, None
            token = secrets.token_urlsafe(32)
            session.add(StaffSession(token_hash=token_hash(token), user_name=name,
                                     created_at=now, last_seen_at=now))
            add_event(session, now, name, "signed_in")
            return token
    raise refused


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return False


def session_user(app: App, token: str | None) -> str | None:
    """The user signed in with ``token``, touching the session; None when there is none or
    it has ended (idle or too old: then it is deleted)."""
    if not token:
        return None
    now = app.now()
    with app.db.session() as session:
        row = session.get(StaffSession, token_hash(token))
        if row is None:
            return None
        if now - row.last_seen_at > IDLE_TIMEOUT or now - row.created_at > MAX_AGE:
            session.delete(row)
            return None
        row.last_seen_at = now
        return row.user_name


def sign_out(app: App, token: str, name: str) -> None:
    now = app.now()
    with app.db.session() as session:
        session.execute(sa.delete(StaffSession).where(
            StaffSession.token_hash == token_hash(token)))
        add_event(session, now, name, "signed_out")


def record_reveal(app: App, request_id: str, name: str) -> None:
    """The staff trail's line for a reveal (the request's own trail gets one too)."""
    with app.db.session() as session:
        add_event(session, app.now(), name, "identities_revealed", request_id=request_id)


def events(app: App) -> list[StaffEvent]:
    with app.db.session() as session:
        return list(session.scalars(sa.select(StaffEvent).order_by(StaffEvent.id)))
