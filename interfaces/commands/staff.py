"""``dsar staff``: the privacy team's sign-ins to the portal's staff area (add, passwd, remove,
list). Passwords are asked for without echo (twice), or read from standard input with
``--password-stdin`` for scripts; only an argon2id hash is kept."""

from __future__ import annotations

import sys

import click

from interfaces.commands.context import CliState, pass_state
from interfaces.commands.output import console, styled

_STDIN = click.option("--password-stdin", is_flag=True,
                      help="Read the password from the first line of standard input.")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("password", hide_input=True, confirmation_prompt=True, err=True)


@click.group("staff")
def staff() -> None:
    """Users of the portal's staff area (/staff): the privacy team."""


@staff.command("add")
@click.argument("name")
@_STDIN
@pass_state
def staff_add(state: CliState, name: str, password_stdin: bool) -> None:
    """Let NAME sign in to the staff area, with a password of at least 12 characters.

    \b
    Example:
      dsar staff add alice
      printf '%s\\n' "$PASSWORD" | dsar staff add alice --password-stdin
    """
    from interfaces.portal.staff_accounts import add_user, check_name

    check_name(name)  # before asking for a password
    add_user(state.app, name, _password(password_stdin))
    console.print(styled("{} can sign in at /staff", name))


@staff.command("passwd")
@click.argument("name")
@_STDIN
@pass_state
def staff_passwd(state: CliState, name: str, password_stdin: bool) -> None:
    """Give NAME a new password: unlocks the account and signs out its sessions."""
    from interfaces.portal.staff_accounts import set_password

    set_password(state.app, name, _password(password_stdin))
    console.print(styled("password of {} changed; its sessions are signed out", name))


@staff.command("remove")
@click.argument("name")
@pass_state
def staff_remove(state: CliState, name: str) -> None:
    """Stop NAME signing in, at once (the audit trail keeps what they did)."""
    from interfaces.portal.staff_accounts import remove_user

    remove_user(state.app, name)
    console.print(styled("{} removed", name))


@staff.command("list")
@pass_state
def staff_list(state: CliState) -> None:
    """The staff users: since when, password changed, locked until."""
    from interfaces.portal.staff_accounts import list_users

    found = list_users(state.app)
    if not found:
        console.print("no staff users; add one with `dsar staff add NAME`")
    now = state.app.now()
    for user in found:
        locked = (f"  locked until {user.locked_until.isoformat(timespec='seconds')}"
                  if user.locked_until and user.locked_until > now else "")
        console.print(styled("{}  added {}  password changed {}{}", user.name,
                             user.created_at.isoformat(timespec="seconds"),
                             user.password_changed_at.isoformat(timespec="seconds"), locked))
