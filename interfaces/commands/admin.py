"""Commands for the state database and the configuration."""

from __future__ import annotations

import click

from dsar.app import App
from dsar.settings import SETTINGS_DOC, Settings, env_name
from interfaces.commands.output import console, json_option, print_json, table


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
    """Show every setting, its value (secrets hidden) and where it comes from.

    Source is ``environment`` (its DSAR_* variable is set), ``file`` (the master key generated
    into the data directory) or ``default``. --json gives typed values: numbers, true/false,
    lists and null.
    """
    settings = Settings.from_env()
    sources = Settings.sources()
    if as_json:
        typed = settings.typed()
        print_json({env_name(name): {"field": name, "value": typed[name],
                                     "source": sources[name],
                                     "default": SETTINGS_DOC[env_name(name)][0],
                                     "meaning": SETTINGS_DOC[env_name(name)][1]}
                    for name in typed})
        return
    rows = [[env_name(name), value, sources[name], SETTINGS_DOC[env_name(name)][1]]
            for name, value in settings.redacted().items()]
    # Values (paths, URLs) are read whole; the meanings wrap into what is left, or, when that
    # is less than _MEANING_MIN, are left out for --json and wide terminals to show.
    whole = sum(max(len(r[i]) for r in rows) for i in range(3)) + 9
    if console.width - whole >= _MEANING_MIN:
        console.print(table("effective settings", ["setting", "value", "source", "meaning"],
                            rows))
        return
    out = table("effective settings", ["setting", "value", "source"], [r[:3] for r in rows])
    out.caption = "narrow terminal: meaning left out (--json or a wider terminal has it)"
    console.print(out)


_MEANING_MIN = 24
