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
    "DSAR_MASTER_KEY_FILE": ("none", "a file (a mounted secret) holding the master key, read "
                             "when DSAR_MASTER_KEY is not set; must not be readable by others"),
    "DSAR_SIGNING_KEYS_DIR": ("<data dir>/signing-keys", "Ed25519 keys for completion records"),
    "DSAR_SIGNING_KEY_FILE": ("none", "a PEM private key file (a mounted secret, Ed25519 or "
                              "P-256) that signs records instead of the keyring's active key"),
    "DSAR_SIGNING_KMS_KEY_ID": ("none", "an AWS KMS key (id, ARN or alias; ECC_NIST_P256) that "
                                "signs records instead; AWS_ENDPOINT_URL_KMS for another endpoint"),
    "DSAR_SIGNING_PUBLIC_KEYS_FILE": ("none", "PEM public keys of retired signing keys (from "
                                      "`dsar keys export-public`), for bundles of older records"),
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
    "DSAR_SMTP_URL": ("none", "where mail to people goes: smtp://host:port (smtps:// for TLS "
                      "from the start); none: messages wait unsent"),
    "DSAR_SMTP_STARTTLS": ("false", "true: upgrade the SMTP connection with STARTTLS"),
    "DSAR_SMTP_USERNAME": ("none", "SMTP login, if the server needs one"),
    "DSAR_SMTP_PASSWORD": ("none", "SMTP password (secret)"),
    "DSAR_MAIL_FROM": ("privacy@localhost", "the From address of messages to people"),
    "DSAR_VERIFY_HOURS": ("72", "how long an emailed verification link or code works; an "
                          "unverified web request is closed after it"),
    "DSAR_RATE_LIMIT_STORAGE": ("memory://", "where the portal counts for its rate limits: "
                                "redis://host:6379 shares them between portal processes"),
    "DSAR_RATE_LIMIT_ADDRESS": ("10/minute", "form posts allowed per client address"),
    "DSAR_RATE_LIMIT_EMAIL": ("5/hour", "requests allowed per email address"),
    "DSAR_PRIVACY_NOTICE_URL": ("none", "the controller's privacy notice, linked from the "
                                "portal's form"),
    "DSAR_CONTROLLER_CONTACT": ("none", "how to reach the controller or its data protection "
                                "officer (an address or email), shown on the portal's form"),
    "DSAR_DRP_BUSINESS_ID": ("none", "this controller's business-id in the Data Rights "
                             "Protocol; signed DRP requests must name it (none: /drp refuses)"),
    "DSAR_PORTAL_ACCOUNT_KEY": ("account_id", "the data map's key name for the account id a "
                                "person may give on the portal's form"),
    "DSAR_ACTOR": ("your login name", "who the audit log says acted, for CLI commands"),
    "DSAR_RATE_LIMIT_URL": ("the broker if Redis, else memory://", "where connectors count "
                            "calls to SaaS APIs, shared by the fleet"),
    "DSAR_METRICS_PORT": ("none", "`dsar worker --metrics-port`: the port of the worker's "
                          "Prometheus metrics and health"),
    "DSAR_WATCH_INTERVAL": ("30", "seconds between a worker's checks for late work and lost "
                            "messages"),
    "DSAR_TASK_LEASE_SECONDS": ("30", "how long a worker holds a task before another may take "
                                "it over"),
    "DSAR_LOST_MESSAGE_SECONDS": ("900", "how long a message may wait before the watch takes it "
                                  "for lost and sends it again"),
    "DSAR_RETENTION_SWEEP_SECONDS": ("300", "seconds between a worker's deletions of bundles "
                                     "whose retention ended"),
    "DSAR_ORPHAN_SWEEP_SECONDS": ("86400", "seconds between a worker's listings of the bundle "
                                  "store for bundles without a request"),
    "DSAR_PARTIAL_SWEEP_SECONDS": ("3600", "seconds between a worker's clean-ups of half-written "
                                   "bundles"),
    "DSAR_SHARED_ERASURE_MAX_WAIT_HOURS": ("0", "how long an erasure of shared S3 files may wait "
                                           "to join a batch (one pass removes everyone "
                                           "pending); 0: each erasure rewrites them alone"),
    "DSAR_SHARED_ERASURE_MARGIN_DAYS": ("3", "a batch of shared erasures runs at least this many "
                                        "days before its earliest member's deadline"),
    "DSAR_VENDOR_JOB_POLL_MIN_SECONDS": ("30", "the shortest wait between two polls of a SaaS "
                                         "vendor's erasure job (a vendor file may ask for "
                                         "longer)"),
    "DSAR_VENDOR_JOB_POLL_MAX_SECONDS": ("3600", "the longest wait between two polls of a "
                                         "vendor's erasure job (the wait doubles up to it)"),
    "DSAR_VENDOR_JOB_GIVE_UP_DAYS": ("35", "a vendor's erasure job still running this many "
                                     "days after it was submitted needs attention"),
    "DSAR_SQL_FAST_PATH": ("true", "true: the state database's hot-path statements and the SQL "
                           "connectors' look-ups run on the driver's cursor (dsar.db.direct); "
                           "false: through SQLAlchemy's ORM and Core alone"),
}
SECRET_FIELDS = frozenset({"master_key", "smtp_password"})
URL_FIELDS = frozenset({"database_url", "broker_url", "smtp_url", "rate_limit_storage",
                        "rate_limit_url"})


def env_name(field_name: str) -> str:
    """The environment variable that sets a :class:`Settings` field."""
    return "DSAR_DATAMAP" if field_name == "datamap_path" else f"DSAR_{field_name.upper()}"


def raw_setting(field_name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The unchecked text of one :class:`Settings` field's variable (None when unset or
    empty), for a default that must not fail on another setting, such as the command line's
    ``--actor``. Everything else reads :meth:`Settings.from_env`."""
    if field_name not in {f.name for f in fields(Settings)}:
        raise KeyError(field_name)
    env = os.environ if environ is None else environ
    return (env.get(env_name(field_name)) or "").strip() or None


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
    smtp_url: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    smtp_username: str | None = field(default=None, repr=False)
    smtp_password: str | None = field(default=None, repr=False)
    mail_from: str = "privacy@localhost"
    verify_hours: int = 72
    rate_limit_storage: str = field(default="memory://", repr=False)
    rate_limit_address: str = "10/minute"
    rate_limit_email: str = "5/hour"
    privacy_notice_url: str | None = None
    controller_contact: str | None = None
    drp_business_id: str | None = None
    portal_account_key: str = "account_id"
    actor: str | None = None
    master_key_file: Path | None = None
    signing_key_file: Path | None = None
    signing_kms_key_id: str | None = None
    signing_public_keys_file: Path | None = None
    rate_limit_url: str | None = field(default=None, repr=False)
    metrics_port: int | None = None
    watch_interval: float = 30.0
    task_lease_seconds: float = 30.0
    lost_message_seconds: float = 900.0
    retention_sweep_seconds: float = 300.0
    orphan_sweep_seconds: float = 86400.0
    partial_sweep_seconds: float = 3600.0
    shared_erasure_max_wait_hours: float = 0.0
    shared_erasure_margin_days: int = 3
    vendor_job_poll_min_seconds: float = 30.0
    vendor_job_poll_max_seconds: float = 3600.0
    vendor_job_give_up_days: float = 35.0
    sql_fast_path: bool = True

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
        broker_url = env.get("DSAR_BROKER_URL") or "memory://"
        if not re.match(r"^(amqps?|rediss?|memory)://", broker_url):
            scheme, sep, _ = broker_url.partition("://")  # the rest may hold a password
            raise InvalidInput(
                f"DSAR_BROKER_URL has the scheme {scheme!r}, not a broker dsar can use" if sep
                else "DSAR_BROKER_URL is not a URL (it has no scheme://)",
                "use amqp://user:pass@host:5672/ (RabbitMQ), redis://host:6379/0 or memory://",
            )
        return cls(
            data_dir=data_dir,
            database_url=env.get("DSAR_DATABASE_URL")
            or f"sqlite:///{data_dir / 'state.sqlite3'}",
            broker_url=broker_url,
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
            **_mail_settings(env),
            **_key_settings(env),
            **_fleet_settings(env),
            **_batch_settings(env),
            **_vendor_job_settings(env),
        )

    @property
    def saas_rate_limit_url(self) -> str:
        """Where connectors count calls to SaaS APIs: DSAR_RATE_LIMIT_URL; else the broker
        when it is Redis (the fleet shares it already); else this process's memory."""
        if self.rate_limit_url:
            return self.rate_limit_url
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return "memory://"

    @staticmethod
    def sources(environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Where each field's value comes from: ``environment`` (its variable is set and not
        empty), ``file`` (the master key generated into the data directory) or ``default``."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("DSAR_DATA_DIR") or platformdirs.user_data_dir("dsar"))
        out: dict[str, str] = {}
        for f in fields(Settings):
            if (env.get(env_name(f.name)) or "").strip():
                out[f.name] = "environment"
            elif f.name == "master_key" and ((env.get("DSAR_MASTER_KEY_FILE") or "").strip()
                                             or (data_dir / "master.key").exists()):
                out[f.name] = "file"
            else:
                out[f.name] = "default"
        return out

    def typed(self) -> dict[str, object]:
        """Every setting as a JSON value of its type (numbers, true/false, lists, null), with
        secrets and URL passwords hidden as in :meth:`redacted`."""
        shown = self.redacted()
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS or f.name in URL_FIELDS:
                out[f.name] = None if value is None and f.name != "master_key" else shown[f.name]
            elif isinstance(value, frozenset):
                out[f.name] = sorted(value)
            elif isinstance(value, Path):
                out[f.name] = str(value)
            else:
                out[f.name] = value
        return out

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
            elif f.name == "smtp_password":
                value = "(set)" if value else "none"
            elif f.name in URL_FIELDS and value:
                value = _hide_password(str(value))
            elif isinstance(value, frozenset):
                value = ",".join(sorted(value)) or "none"
            elif value is None:
                value = "none"
            elif isinstance(value, bool):
                value = "yes" if value else "no"
            elif isinstance(value, float):
                value = f"{value:g}"
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


def _mail_settings(env: Mapping[str, str]) -> dict[str, object]:
    """The portal's mail and rate-limit settings, checked."""
    smtp_url = (env.get("DSAR_SMTP_URL") or "").strip() or None
    if smtp_url is not None and not re.match(r"^smtps?://[^/:]+(:\d+)?/?$", smtp_url):
        raise InvalidInput(f"DSAR_SMTP_URL={smtp_url!r} is not an SMTP address",
                           "write smtp://host:port or smtps://host:port")
    starttls = (env.get("DSAR_SMTP_STARTTLS") or "false").strip().lower()
    if starttls not in ("true", "false", "1", "0", "yes", "no"):
        raise InvalidInput(f"DSAR_SMTP_STARTTLS={starttls!r} is not true or false",
                           "set DSAR_SMTP_STARTTLS=true or false")
    storage = (env.get("DSAR_RATE_LIMIT_STORAGE") or "memory://").strip()
    if not re.match(r"^(memory|redis|rediss)://", storage):
        raise InvalidInput(f"DSAR_RATE_LIMIT_STORAGE={storage!r} is not memory:// or redis://",
                           "write redis://host:6379 to share limits, or memory://")
    limits = {}
    for name, default in (("DSAR_RATE_LIMIT_ADDRESS", "10/minute"),
                          ("DSAR_RATE_LIMIT_EMAIL", "5/hour")):
        value = (env.get(name) or default).strip()
        if not re.match(r"^\d+/(second|minute|hour|day)$", value):
            raise InvalidInput(f"{name}={value!r} is not a rate", f"write e.g. {name}={default}")
        limits[name] = value
    return {
        "smtp_url": smtp_url,
        "smtp_starttls": starttls in ("true", "1", "yes"),
        "smtp_username": env.get("DSAR_SMTP_USERNAME") or None,
        "smtp_password": env.get("DSAR_SMTP_PASSWORD") or None,
        "mail_from": (env.get("DSAR_MAIL_FROM") or "privacy@localhost").strip(),
        "verify_hours": _positive_int(env, "DSAR_VERIFY_HOURS", 72),
        "rate_limit_storage": storage,
        "rate_limit_address": limits["DSAR_RATE_LIMIT_ADDRESS"],
        "rate_limit_email": limits["DSAR_RATE_LIMIT_EMAIL"],
        **_portal_settings(env),
    }


def _portal_settings(env: Mapping[str, str]) -> dict[str, object]:
    """What the portal's form shows and asks (privacy notice, contact, account key), checked."""
    notice = (env.get("DSAR_PRIVACY_NOTICE_URL") or "").strip() or None
    if notice is not None and not re.match(r"^https?://\S+$", notice):
        raise InvalidInput(f"DSAR_PRIVACY_NOTICE_URL={notice!r} is not a web address",
                           "write https://… (the page of your privacy notice)")
    key = (env.get("DSAR_PORTAL_ACCOUNT_KEY") or "account_id").strip()
    if not re.match(r"^[a-z][a-z0-9_]{0,62}$", key) or key in ("email", "phone"):
        raise InvalidInput(f"DSAR_PORTAL_ACCOUNT_KEY={key!r} is not a key name",
                           "use the data map's key name, e.g. customer_id")
    return {"privacy_notice_url": notice,
            "controller_contact": (env.get("DSAR_CONTROLLER_CONTACT") or "").strip() or None,
            "drp_business_id": (env.get("DSAR_DRP_BUSINESS_ID") or "").strip() or None,
            "portal_account_key": key}


def _key_settings(env: Mapping[str, str]) -> dict[str, object]:
    """Where the master key and the signing key come from when not the data directory: mounted
    files, or an AWS KMS key. At most one signing source may be named."""
    def path(name: str) -> Path | None:
        raw = (env.get(name) or "").strip()
        return Path(raw) if raw else None

    out: dict[str, object] = {
        "master_key_file": path("DSAR_MASTER_KEY_FILE"),
        "signing_key_file": path("DSAR_SIGNING_KEY_FILE"),
        "signing_kms_key_id": (env.get("DSAR_SIGNING_KMS_KEY_ID") or "").strip() or None,
        "signing_public_keys_file": path("DSAR_SIGNING_PUBLIC_KEYS_FILE"),
    }
    if out["signing_key_file"] and out["signing_kms_key_id"]:
        raise InvalidInput("both DSAR_SIGNING_KEY_FILE and DSAR_SIGNING_KMS_KEY_ID are set",
                           "set only the one that should sign completion records")
    return out


def _fleet_settings(env: Mapping[str, str]) -> dict[str, object]:
    """Who acts, the SaaS limiter's store, metrics and the workers' timings, checked."""
    port = (env.get("DSAR_METRICS_PORT") or "").strip()
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise InvalidInput(f"DSAR_METRICS_PORT={port!r} is not a port",
                           "set DSAR_METRICS_PORT to a number from 1 to 65535, e.g. 9191")
    out: dict[str, object] = {
        "actor": (env.get("DSAR_ACTOR") or "").strip() or None,
        "rate_limit_url": (env.get("DSAR_RATE_LIMIT_URL") or "").strip() or None,
        "metrics_port": int(port) if port else None,
    }
    fast = (env.get("DSAR_SQL_FAST_PATH") or "true").strip().lower()
    if fast not in ("true", "false", "1", "0", "yes", "no"):
        raise InvalidInput(f"DSAR_SQL_FAST_PATH={fast!r} is not true or false",
                           "set DSAR_SQL_FAST_PATH=true or false")
    out["sql_fast_path"] = fast in ("true", "1", "yes")
    for name, default in (("DSAR_WATCH_INTERVAL", 30.0), ("DSAR_TASK_LEASE_SECONDS", 30.0),
                          ("DSAR_LOST_MESSAGE_SECONDS", 900.0),
                          ("DSAR_RETENTION_SWEEP_SECONDS", 300.0),
                          ("DSAR_ORPHAN_SWEEP_SECONDS", 86400.0),
                          ("DSAR_PARTIAL_SWEEP_SECONDS", 3600.0)):
        out[name.removeprefix("DSAR_").lower()] = _positive_seconds(env, name, default)
    return out


def _batch_settings(env: Mapping[str, str]) -> dict[str, object]:
    """How long shared erasures may wait for a batch, and the margin before deadlines."""
    out: dict[str, object] = {}
    for name, default, kind in (("DSAR_SHARED_ERASURE_MAX_WAIT_HOURS", "0", float),
                                ("DSAR_SHARED_ERASURE_MARGIN_DAYS", "3", int)):
        raw = (env.get(name) or "").strip() or default
        try:
            value = kind(raw)
        except ValueError:
            value = -1
        if not 0 <= value < 24 * 366:
            raise InvalidInput(f"{name}={raw!r} is not a number from 0 up to a year",
                               f"set {name}={default} (0 waits not at all)")
        out[name.removeprefix("DSAR_").lower()] = value
    return out


def _vendor_job_settings(env: Mapping[str, str]) -> dict[str, object]:
    """How often the fleet polls SaaS vendors' erasure jobs, and when it gives up."""
    low = _positive_seconds(env, "DSAR_VENDOR_JOB_POLL_MIN_SECONDS", 30.0)
    high = _positive_seconds(env, "DSAR_VENDOR_JOB_POLL_MAX_SECONDS", 3600.0)
    if low > high:
        raise InvalidInput(
            f"DSAR_VENDOR_JOB_POLL_MIN_SECONDS ({low:g}) is above "
            f"DSAR_VENDOR_JOB_POLL_MAX_SECONDS ({high:g})",
            "set the minimum at or below the maximum, e.g. 30 and 3600")
    raw = (env.get("DSAR_VENDOR_JOB_GIVE_UP_DAYS") or "").strip() or "35"
    try:
        days = float(raw)
    except ValueError:
        days = 0.0
    if not 0 < days <= 366:
        raise InvalidInput(f"DSAR_VENDOR_JOB_GIVE_UP_DAYS={raw!r} is not a number of days "
                           "from above 0 up to a year", "set DSAR_VENDOR_JOB_GIVE_UP_DAYS=35")
    return {"vendor_job_poll_min_seconds": low, "vendor_job_poll_max_seconds": high,
            "vendor_job_give_up_days": days}


def _positive_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise InvalidInput(f"{name}={raw!r} is not a positive number of seconds",
                           f"set {name}={default:g}")
    return value


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
