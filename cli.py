"""The ``dsar`` command line: a thin layer over the ``dsar`` package and ``workflows``.

Every command that prints data takes ``--json``. A mistake in the input prints one line, what
is wrong and how to fix it, and exits non-zero with nothing changed; a traceback means a bug.
Under ``--json`` that line is a JSON object on standard output.

Commands are imported when they run, not at start-up (:class:`DsarGroup`, :data:`COMMANDS`):
``dsar --help`` and ``--version`` load no database, broker or rich code
(``bench/cli_startup.py`` measures it).
"""

from __future__ import annotations

import getpass
import inspect
import sys
from importlib import import_module
from typing import Any

import click
from click.exceptions import NoArgsIsHelpError

from dsar import __version__
from dsar.errors import DsarError
from dsar.settings import raw_setting
from interfaces.commands import exits

#: Every command: its name, and the module of interfaces.commands and the attribute that define it.
COMMANDS: dict[str, tuple[str, str]] = {
    "agents": ("agents", "agents"),
    "approve": ("requests", "approve"),
    "bundle": ("bundles", "bundle"),
    "cancel": ("requests", "cancel"),
    "config": ("admin", "config"),
    "confirm-identity": ("requests", "confirm_identity"),
    "datamap": ("datamap", "datamap"),
    "db": ("admin", "db_group"),
    "demo": ("demo", "demo"),
    "extend": ("requests", "extend"),
    "keys": ("records", "keys"),
    "lake": ("lake", "lake"),
    "ledger": ("records", "ledger"),
    "list": ("requests", "list_cmd"),
    "notify": ("notify", "notify"),
    "pause": ("requests", "pause"),
    "plan": ("datamap", "plan"),
    "record": ("records", "record"),
    "reject": ("requests", "reject"),
    "report": ("records", "report"),
    "resume": ("requests", "resume"),
    "retry": ("fleet", "retry"),
    "serve": ("bundles", "serve"),
    "show": ("requests", "show"),
    "staff": ("staff", "staff"),
    "submit": ("requests", "submit"),
    "verify": ("records", "verify"),
    "worker": ("fleet", "worker"),
}

#: The one-line help ``dsar --help`` lists, so listing loads no command module
#: (tests/test_cli_reading_startup.py checks each against its command's own help).
SHORT_HELP: dict[str, str] = {
    "agents": "Tokens with which authorised agents use the API (/api/v1) to file requests.",
    "approve": "Approve a request waiting for approval, so that work starts.",
    "bundle": ("Show where a request's export bundle is, its digest, and until when it can "
               "be fetched."),
    "cancel": "Cancel a request (for example, withdrawn by the subject).",
    "config": "Show every setting, its value (secrets hidden) and where it comes from.",
    "confirm-identity": "Record that the subject's identity was verified.",
    "datamap": "Write, check and import data maps.",
    "db": "The state database.",
    "demo": ("Build a sample company and run an access, an export and an erasure request end "
             "to end."),
    "extend": "Take the regime's extension (once, with a reason, before the first period ends).",
    "keys": "The Ed25519 keys that sign completion records and ledger checkpoints.",
    "lake": "Maintain Delta Lake and Iceberg tables that hold shared collections.",
    "ledger": "The append-only ledger of completion records and its signed checkpoints.",
    "list": "List requests, soonest due first.",
    "notify": "Queue message KIND to the person who made REQUEST_ID, by email.",
    "pause": "Wait for clarification from the subject.",
    "plan": "Show what a request of ACTION would do, without touching any data.",
    "record": ("Write the completion record bundle of a request (JSON, the default; --json "
               "says so)."),
    "reject": "Refuse a request, with the reason the subject will be given (Art. 12(4)).",
    "report": "Requests answered, on time or not, for a reviewer or a regulator.",
    "resume": "The subject answered: end the pause and carry on.",
    "retry": ("Resume a request that needs attention: failed tasks run again, finished ones "
              "are kept."),
    "serve": ("Serve the data subjects' portal under uvicorn: the request form, "
              "verification, status and bundle downloads, to many clients at once."),
    "show": "Show one request: identities (masked), state, deadlines and its full timeline.",
    "staff": "Users of the portal's staff area (/staff): the privacy team.",
    "submit": "Record a new access, export or erasure request.",
    "verify": "Check a completion record bundle offline, and print every check.",
    "worker": "Run workers that execute requests until stopped.",
}


class DsarGroup(click.Group):
    """The root group: commands load on use, and a DsarError becomes one line (JSON under
    ``--json``) with its exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["dsar.json"] = "--json" in args[:args.index("--")] if "--" in args else \
            "--json" in args
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        module, attribute = COMMANDS[cmd_name]
        command = getattr(import_module(f"interfaces.commands.{module}"), attribute)
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if names:
            limit = formatter.width - 6 - max(len(name) for name in names)
            rows = [(name, _shorten(SHORT_HELP.get(name) or _loaded_help(self, ctx, name),
                                    limit)) for name in names]
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DsarError as err:
            _fail(ctx, err.one_line(), err.problem, err.fix, err.exit_code)
        except click.UsageError as err:
            if isinstance(err, NoArgsIsHelpError):
                raise
            command = err.ctx.command_path if err.ctx is not None else ctx.command_path
            problem = err.format_message().rstrip(".")
            fix = f"see `{command} --help`"
            _fail(ctx, f"{problem}; {fix}", problem, fix, err.exit_code)
        except Exception as err:  # the state database out of reach: one line, not a traceback
            from dsar.db.engine import unreachable

            if (error := unreachable(err)) is None:
                raise
            _fail(ctx, error.one_line(), error.problem, error.fix, error.exit_code)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(limit - 3, 10)].rsplit(" ", 1)[0] + "..."


def _loaded_help(group: click.Group, ctx: click.Context, name: str) -> str:
    command = group.get_command(ctx, name)
    return command.get_short_help_str(limit=300) if command is not None else ""


def _fail(ctx: click.Context, line: str, problem: str, fix: str | None, code: int) -> None:
    """Print an error: one line on standard error, or under --json a JSON object on standard
    output (``{"error", "fix", "exit_code"}``); then exit with ``code``."""
    if ctx.meta.get("dsar.json"):
        import json

        sys.stdout.write(json.dumps({"error": problem, "fix": fix, "exit_code": code},
                                    ensure_ascii=False) + "\n")
    else:
        from interfaces.commands.output import err_console, styled

        # One line, and the text shown verbatim: a value the user typed may look like markup.
        err_console.print(styled("[red]error:[/] {}", line))
    ctx.exit(code)


def _default_actor() -> str:
    try:
        return raw_setting("actor") or getpass.getuser()
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

    Settings come from DSAR_* environment variables; `dsar config` shows them. Shell
    completion: see the README ("Shell completion").
    """
    from interfaces.commands.context import CliState

    ctx.obj = CliState(actor=actor)


main.help = inspect.cleandoc(main.help or "") + "\n\n" + exits.help_block()


if __name__ == "__main__":
    sys.exit(main())
