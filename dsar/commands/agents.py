"""``dsar agents``: API tokens for authorised agents (issue, list, revoke)."""

from __future__ import annotations

import click

from dsar.commands.context import CliState, pass_state
from dsar.commands.output import console, styled


@click.group("agents")
def agents() -> None:
    """Tokens with which authorised agents use the API (/api/v1) to file requests."""


@agents.command("issue")
@click.argument("name")
@pass_state
def agents_issue(state: CliState, name: str) -> None:
    """Issue a token for the agent NAME and print it once (only its hash is kept).

    \b
    Example:
      dsar agents issue "Acme Privacy Agents"
      curl -H "Authorization: Bearer dsar_agent_…" https://portal.example/api/v1/requests/ID
    """
    from dsar.portal.agents import issue

    token = issue(state.app, name)
    console.print(styled("token for {} (shown once; keep it secret):", name))
    click.echo(token)


@agents.command("list")
@pass_state
def agents_list(state: CliState) -> None:
    """The agents with tokens: when issued, last used, revoked."""
    from dsar.portal.agents import list_agents

    found = list_agents(state.app)
    if not found:
        console.print("no agents; issue a token with `dsar agents issue NAME`")
    for agent in found:
        used = agent.last_used_at.isoformat(timespec="seconds") if agent.last_used_at else "never"
        status = (f"revoked {agent.revoked_at.isoformat(timespec='seconds')}"
                  if agent.revoked_at else "active")
        console.print(styled("{}  issued {}  last used {}  {}", agent.name,
                             agent.created_at.isoformat(timespec="seconds"), used, status))


@agents.command("revoke")
@click.argument("name")
@pass_state
def agents_revoke(state: CliState, name: str) -> None:
    """Stop the token of agent NAME working at once."""
    from dsar.portal.agents import revoke

    revoke(state.app, name)
    console.print(styled("token of {} revoked", name))
