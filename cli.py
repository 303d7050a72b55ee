"""The ``dsar`` command line: a thin layer over the ``dsar`` package and ``workflows``.

Every command that prints data takes ``--json``. A mistake in the input prints one line, what
is wrong and how to fix it, and exits non-zero with nothing changed; a traceback means a bug.
"""

from __future__ import annotations

import getpass
import inspect
import os
import sys
from typing import Any

import click
from click.exceptions import NoArgsIsHelpError

from dsar import __version__
from dsar.commands import admin, exits
from dsar.commands import requests as request_commands
from dsar.commands.context import CliState
from dsar.commands.output import err_console, styled
from dsar.errors import DsarError


class DsarGroup(click.Group):
    """A group that turns DsarError into one clear line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DsarError as err:
            # One line, and the text shown verbatim: a value the user typed may look like markup.
            err_console.print(styled("[red]error:[/] {}", err.one_line()))
            ctx.exit(err.exit_code)
        except click.UsageError as err:
            if isinstance(err, NoArgsIsHelpError):
                raise
            command = err.ctx.command_path if err.ctx is not None else ctx.command_path
            err_console.print(styled("[red]error:[/] {}; see `{} --help`",
                                     err.format_message().rstrip("."), command))
            ctx.exit(err.exit_code)


def _default_actor() -> str:
    try:
        return os.environ.get("DSAR_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@click.group(cls=DsarGroup, context_settings={"help_option_names": ["-h", "--help"],
                                              "max_content_width": 100})
@click.version_option(__version__, prog_name="dsar")
@click.option("--actor", default=_default_actor, metavar="NAME",
              help="Who is acting, for the audit trail [default: $DSAR_ACTOR or your login].")
@click.pass_context
def main(ctx: click.Context, actor: str) -> None:
    """dsar answers data subject requests: access, export (portability) and erasure.

    Submit a request, let the worker fleet search every system in the data map, and get a
    signed completion record that proves what was done and whether the legal deadline was met.

    \b
    Start here:
      dsar demo                                   a sample company, three requests, end to end
      dsar submit access --email jane@example.com submit a request
      dsar list --due-within 7d                   what is due soon
      dsar show ID                                one request and its timeline

    Settings come from DSAR_* environment variables; `dsar config` shows them.
    """
    ctx.obj = CliState(actor=actor)


main.help = inspect.cleandoc(main.help or "") + "\n\n" + exits.help_block()


for command in request_commands.COMMANDS:
    main.add_command(command)
main.add_command(admin.db_group)
main.add_command(admin.config)


def _optional_commands() -> None:
    """Command groups that live with their features."""
    from importlib import import_module

    for module, names in (("dsar.commands.datamap", ("datamap", "plan")),
                          ("dsar.commands.fleet", ("worker", "retry")),
                          ("dsar.commands.records", ("record", "verify", "keys", "ledger",
                                                     "report")),
                          ("dsar.commands.bundles", ("bundle", "serve")),
                          ("dsar.commands.notify", ("notify",)),
                          ("dsar.commands.agents", ("agents",)),
                          ("dsar.commands.demo", ("demo",))):
        try:
            mod = import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        for name in names:
            if hasattr(mod, name):
                main.add_command(getattr(mod, name))


_optional_commands()

if __name__ == "__main__":
    sys.exit(main())
