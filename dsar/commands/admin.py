"""Commands for the state database and the configuration."""

from __future__ import annotations

import click

from dsar.app import App
from dsar.commands.output import console, json_option, print_json, table
from dsar.settings import SETTINGS_DOC, Settings, env_name


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
    console.print(table("effective settings", ["setting", "value", "meaning"], [
        [env_name(field), value, SETTINGS_DOC[env_name(field)][1]]
        for field, value in values.items()]))
