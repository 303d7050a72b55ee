"""``dsar agents``: API tokens for authorised agents (issue, key, list, revoke)."""

from __future__ import annotations

import click

from interfaces.commands.context import CliState, pass_state
from interfaces.commands.output import console, styled


@click.group("agents")
def agents() -> None:
    """Tokens with which authorised agents use the API (/api/v1) to file requests."""


@agents.command("issue")
@click.argument("name")
@click.option("--verify-key", metavar="KEY",
              help="the agent's Ed25519 verify key (base64 or hex), needed for /drp")
@pass_state
def agents_issue(state: CliState, name: str, verify_key: str | None) -> None:
    """Issue a token for the agent NAME and print it once (only its hash is kept).

    For the Data Rights Protocol, NAME is the agent's DRP agent-id and --verify-key its
    published libsodium verify key: /drp accepts only requests signed with that key.

    \b
    Example:
      dsar agents issue "Acme Privacy Agents"
      curl -H "Authorization: Bearer dsar_agent_…" https://portal.example/api/v1/requests/ID
      dsar agents issue ACME_AA --verify-key 3Xk1…=
    """
    from interfaces.portal.agents import issue

    token = issue(state.app, name, verify_key)
    console.print(styled("token for {} (shown once; keep it secret):", name))
    click.echo(token)


@agents.command("key")
@click.argument("name")
@click.argument("verify_key")
@pass_state
def agents_key(state: CliState, name: str, verify_key: str) -> None:
    """Register (or replace) the Ed25519 VERIFY_KEY (base64 or hex) of agent NAME for /drp."""
    from interfaces.portal.agents import set_verify_key

    stored = set_verify_key(state.app, name, verify_key)
    console.print(styled("verify key of {} registered: {}", name, stored))


@agents.command("list")
@pass_state
def agents_list(state: CliState) -> None:
    """The agents with tokens: when issued, last used, revoked."""
    from interfaces.portal.agents import list_agents

    found = list_agents(state.app)
    if not found:
        console.print("no agents; issue a token with `dsar agents issue NAME`")
    for agent in found:
        used = agent.last_used_at.isoformat(timespec="seconds") if agent.last_used_at else "never"
        status = (f"revoked {agent.revoked_at.isoformat(timespec='seconds')}"
                  if agent.revoked_at else "active")
        signs = f"verify key {agent.verify_key}" if agent.verify_key else "no verify key (no /drp)"
        console.print(styled("{}  issued {}  last used {}  {}  {}", agent.name,
                             agent.created_at.isoformat(timespec="seconds"), used, status,
                             signs))


@agents.command("revoke")
@click.argument("name")
@pass_state
def agents_revoke(state: CliState, name: str) -> None:
    """Stop the token of agent NAME working at once."""
    from interfaces.portal.agents import revoke

    revoke(state.app, name)
    console.print(styled("token of {} revoked", name))
