"""Settings, read once from the environment.

Every setting is an environment variable named ``DSAR_*``; :data:`SETTINGS_DOC` lists them with
their defaults and is what ``dsar config`` and the README show. The embedded default needs none
of them: state lives in a SQLite file in the data directory, the broker is in-process, exports
are files, and the master key is generated on first use.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs

from dsar.errors import InvalidInput

KINDS = ("access", "export", "erasure")
REGIME_NAMES = ("gdpr", "uk_gdpr", "ccpa", "vcdpa", "cpa", "lgpd", "pipeda")
CHANNELS = ("cli", "web", "api")

SETTINGS_DOC: dict[str, tuple[str, str]] = {
    "DSAR_DATA_DIR": ("per-user data folder (platformdirs)", "where the embedded default keeps "
                      "its state file, keys, exports and data map"),
    "DSAR_DATABASE_URL": ("sqlite:///<data dir>/state.sqlite3", "state database; "
                          "postgresql+psycopg://… in production"),
    "DSAR_BROKER_URL": ("memory://", "amqp://… (RabbitMQ), redis://… or memory:// (in-process)"),
    "DSAR_DATAMAP": ("<data dir>/datamap.yaml", "the data map file"),
    "DSAR_EXPORT_URL": ("<data dir>/exports", "where bundles go: a folder or s3://bucket/prefix"),
    "DSAR_EXPORT_ENDPOINT_URL": ("none", "endpoint of an S3-compatible store for bundles"),
    "DSAR_EXPORT_SSE": ("AES256", "server-side encryption requested for S3 bundles: AES256 or "
                        "aws:kms"),
    "DSAR_MASTER_KEY": ("generated into <data dir>/master.key", "base64 of 32 random bytes; "
                        "encryption and keyed-hash keys are derived from it (secret)"),
    "DSAR_SIGNING_KEYS_DIR": ("<data dir>/signing-keys", "Ed25519 keys for completion records"),
    "DSAR_TIMEZONE": ("UTC", "the controller's time zone (IANA name), for deadlines and display"),
    "DSAR_HOLIDAY_CALENDAR": ("none", "ISO country code of the public-holiday calendar, e.g. DE"),
    "DSAR_DEFAULT_REGIME": ("gdpr", "regime for requests that do not name one"),
    "DSAR_APPROVAL_REQUIRED": ("none", "comma-separated kinds that need `dsar approve` first, "
                               "e.g. erasure"),
    "DSAR_PUBLIC_URL": ("http://127.0.0.1:8080", "the portal's address, used in download links"),
    "DSAR_LINK_TTL_DAYS": ("30", "how long a download link works"),
    "DSAR_BUNDLE_RETENTION_DAYS": ("30", "how long a bundle is kept before it is deleted"),
    "DSAR_IDENTITY_RETENTION_DAYS": ("730", "days after a request is closed that its (encrypted) "
                                     "identities are kept, then deleted; records stay"),
    "DSAR_LEDGER_ORIGIN": ("dsar.local/ledger", "the origin line of ledger checkpoints"),
    "DSAR_LOG_FORMAT": ("text", "text or json"),
}


def env_name(field_name: str) -> str:
    """The environment variable that sets a :class:`Settings` field."""
    return "DSAR_DATAMAP" if field_name == "datamap_path" else f"DSAR_{field_name.upper()}"


@dataclass(frozen=True)
class Settings:
    """The effective configuration. Build it with :meth:`from_env`."""

    data_dir: Path
    database_url: str = field(repr=False)  # may hold a password
    broker_url: str = field(repr=False)
    datamap_path: Path
    export_url: str
    export_endpoint_url: str | None
    export_sse: str
    master_key: str | None = field(repr=False)
    signing_keys_dir: Path
    timezone: str
    holiday_calendar: str | None
    default_regime: str
    approval_required: frozenset[str]
    public_url: str
    link_ttl_days: int
    bundle_retention_days: int
    identity_retention_days: int
    ledger_origin: str
    log_format: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the ``DSAR_*`` variables; raise InvalidInput naming a bad one."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("DSAR_DATA_DIR") or platformdirs.user_data_dir("dsar"))
        timezone = env.get("DSAR_TIMEZONE", "UTC")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(
                f"DSAR_TIMEZONE={timezone!r} is not a known time zone",
                "use an IANA name such as Europe/Berlin or UTC",
            ) from None
        regime = env.get("DSAR_DEFAULT_REGIME", "gdpr")
        if regime not in REGIME_NAMES:
            raise InvalidInput(
                f"DSAR_DEFAULT_REGIME={regime!r} is not a regime dsar knows",
                f"use one of: {', '.join(REGIME_NAMES)}",
            )
        approval = frozenset(
            k.strip() for k in env.get("DSAR_APPROVAL_REQUIRED", "").split(",") if k.strip()
        )
        unknown = approval - set(KINDS)
        if unknown:
            raise InvalidInput(
                f"DSAR_APPROVAL_REQUIRED names unknown kinds: {', '.join(sorted(unknown))}",
                f"use a comma-separated list of: {', '.join(KINDS)}",
            )
        log_format = env.get("DSAR_LOG_FORMAT", "text")
        if log_format not in ("text", "json"):
            raise InvalidInput(f"DSAR_LOG_FORMAT={log_format!r} is unknown", "use text or json")
        calendar = (env.get("DSAR_HOLIDAY_CALENDAR") or "").strip().upper() or None
        return cls(
            data_dir=data_dir,
            database_url=env.get("DSAR_DATABASE_URL")
            or f"sqlite:///{data_dir / 'state.sqlite3'}",
            broker_url=env.get("DSAR_BROKER_URL", "memory://"),
            datamap_path=Path(env.get("DSAR_DATAMAP") or data_dir / "datamap.yaml"),
            export_url=env.get("DSAR_EXPORT_URL") or str(data_dir / "exports"),
            export_endpoint_url=env.get("DSAR_EXPORT_ENDPOINT_URL") or None,
            export_sse=env.get("DSAR_EXPORT_SSE", "AES256"),
            master_key=env.get("DSAR_MASTER_KEY"),
            signing_keys_dir=Path(env.get("DSAR_SIGNING_KEYS_DIR") or data_dir / "signing-keys"),
            timezone=timezone,
            holiday_calendar=calendar,
            default_regime=regime,
            approval_required=approval,
            public_url=env.get("DSAR_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/"),
            link_ttl_days=_positive_int(env, "DSAR_LINK_TTL_DAYS", 30),
            bundle_retention_days=_positive_int(env, "DSAR_BUNDLE_RETENTION_DAYS", 30),
            identity_retention_days=_positive_int(env, "DSAR_IDENTITY_RETENTION_DAYS", 730),
            ledger_origin=env.get("DSAR_LEDGER_ORIGIN", "dsar.local/ledger"),
            log_format=log_format,
        )

    @property
    def is_embedded(self) -> bool:
        """True when state is a SQLite file and the broker is in-process."""
        return self.database_url.startswith("sqlite") and self.broker_url.startswith("memory")

    def redacted(self) -> dict[str, str]:
        """Every setting as text, secrets and passwords hidden, for ``dsar config``."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "master_key":
                value = "(set)" if value else "(generated file in the data directory)"
            elif f.name in ("database_url", "broker_url"):
                value = _hide_password(str(value))
            elif isinstance(value, frozenset):
                value = ",".join(sorted(value)) or "none"
            elif value is None:
                value = "none"
            out[f.name] = str(value)
        return out


def _hide_password(url: str) -> str:
    """``scheme://user:***@host/…``: the password of the URL, and any ``password=`` query
    parameter (libpq and psycopg accept one), replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    base, question, query = rest.partition("?")
    creds, at, host = base.rpartition("@")  # the password may hold "/" or "@"
    if at and ":" in creds:
        base = f"{creds.split(':', 1)[0]}:***@{host}"
    query = re.sub(r"(?i)((?:^|[&;])password=)[^&;#]*", r"\1***", query)
    return f"{scheme}://{base}{question}{query}"


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidInput(f"{name}={raw!r} is not a positive whole number", f"set {name}=30")
    return value
