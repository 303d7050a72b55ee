"""Commands for the state database and the configuration."""

from __future__ import annotations

import click

from dsar.app import App
from dsar.commands.output import console, json_option, print_json, table
from dsar.settings import SETTINGS_DOC, Settings


@click.group("db")
def db_group() -> None:
    """The state database."""


@db_group.command("upgrade")
@json_option
def db_upgrade(as_json: bool) -> None:
    """Create or migrate the state database schema to the latest version.

    Safe to run repeatedly. Run it after installing a new version of dsar, before starting
    workers, when the state database is PostgreSQL (the embedded SQLite default upgrades itself).
    """
    app = App.from_env(migrate=False)
    before = app.db.current_revision()
    app.db.upgrade()
    after = app.db.current_revision()
    if as_json:
        print_json({"before": before, "after": after, "changed": before != after})
    elif before == after:
        console.print(f"schema already at {after}")
    else:
        console.print(f"schema upgraded from {before or 'empty'} to {after}")


@click.command("config")
@json_option
def config(as_json: bool) -> None:
    """Show the effective settings (secrets hidden) and where each comes from."""
    settings = Settings.from_env()
    values = settings.redacted()
    if as_json:
        print_json(values)
        return
    names = {
        "data_dir": "DSAR_DATA_DIR", "database_url": "DSAR_DATABASE_URL",
        "broker_url": "DSAR_BROKER_URL", "datamap_path": "DSAR_DATAMAP",
        "export_url": "DSAR_EXPORT_URL", "export_endpoint_url": "DSAR_EXPORT_ENDPOINT_URL",
        "export_sse": "DSAR_EXPORT_SSE", "master_key": "DSAR_MASTER_KEY",
        "signing_keys_dir": "DSAR_SIGNING_KEYS_DIR", "timezone": "DSAR_TIMEZONE",
        "holiday_calendar": "DSAR_HOLIDAY_CALENDAR", "default_regime": "DSAR_DEFAULT_REGIME",
        "approval_required": "DSAR_APPROVAL_REQUIRED", "public_url": "DSAR_PUBLIC_URL",
        "link_ttl_days": "DSAR_LINK_TTL_DAYS",
        "bundle_retention_days": "DSAR_BUNDLE_RETENTION_DAYS",
        "identity_retention_days": "DSAR_IDENTITY_RETENTION_DAYS",
        "ledger_origin": "DSAR_LEDGER_ORIGIN", "log_format": "DSAR_LOG_FORMAT",
    }
    console.print(table("effective settings", ["setting", "value", "meaning"], [
        [env, values[field], SETTINGS_DOC[env][1]] for field, env in names.items()]))
