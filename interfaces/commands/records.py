"""Commands for completion records: record, verify, keys, ledger and the reviewer report.

``verify`` works offline: it reads files only, never the settings or the state database.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from dsar.errors import InvalidInput
from dsar.records import keys as keyring
from dsar.records import ledger as ledger_log
from dsar.records import reviewer_report as reports
from dsar.records.glance import request_facts
from dsar.records.record_bundle import load_json_file, make_bundle
from dsar.records.signing import export_public
from dsar.records.verify import verify_bundle
from dsar.settings import Settings
from interfaces.commands import exits
from interfaces.commands.context import CliState, pass_state
from interfaces.commands.output import (
    console,
    err_console,
    json_option,
    print_json,
    shown,
    styled,
    table,
)

__all__ = ["keys", "ledger", "record", "report", "verify"]

_FILE = click.Path(dir_okay=False, path_type=Path)


def _write(text: str, output: Path | None, what: str) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    if not output.parent.is_dir():
        raise InvalidInput(f"cannot write {output}: the folder {output.parent} does not exist",
                           "create it first or give another path")
    output.write_text(text, encoding="utf-8")
    err_console.print(f"wrote {what} to {output}")


@click.command("record")
@click.argument("request_id")
@click.option("-o", "--output", type=_FILE, help="Write to FILE instead of standard output.")
@click.option("--html", "as_html", is_flag=True,
              help="A self-contained HTML page for a reviewer instead of the JSON bundle.")
@json_option
@pass_state
def record(state: CliState, request_id: str, output: Path | None, as_html: bool,
           as_json: bool) -> None:
    """Write the completion record bundle of a request (JSON, the default; --json says so).

    The bundle holds the signed record, its evidence (no personal data), its inclusion proof
    in the ledger and a signed checkpoint covering it (one is issued if needed), and the
    public key for convenience. Give it to anyone who should check it with `dsar verify`.
    The --html page adds, from the state database, how identity was verified and when the
    export was first downloaded.

    \b
    Example:
      dsar record dsr_0123456789ab -o record.json
      dsar record dsr_0123456789ab --html -o record.html
    """
    if as_html and as_json:
        raise InvalidInput("--html and --json are different formats", "choose one")
    app = state.app
    with app.db.session() as session:
        bundle = make_bundle(session, app, request_id)
        facts = request_facts(session, request_id) if as_html else {}
    if as_html:
        from dsar.records.html import render_record_html

        _write(render_record_html(bundle, facts=facts), output, "the record page")
    else:
        _write(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", output, "the record")


@click.command("verify")
@click.argument("bundle_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--public-key", type=click.Path(dir_okay=False, path_type=Path),
              metavar="PEM", help="The controller's published public key(s), the trust anchor "
              "[default: the key inside the bundle, which proves integrity only].")
@click.option("--ledger", "ledger_file", type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="An exported ledger (`dsar ledger export`) to check the "
              "record and its checkpoint against.")
@json_option
@click.pass_context
def verify(ctx: click.Context, bundle_file: Path, public_key: Path | None,
           ledger_file: Path | None, as_json: bool) -> None:
    """Check a completion record bundle offline, and print every check.

    Checks the signature, canonical form, the evidence Merkle root, the timeline and deadline
    rule, the checkpoint signature and the inclusion proof; with --ledger also that the ledger's
    checkpoints are consistent and the record is in it. Exits 1 if any check fails, and 9
    when every check passed but no --public-key was given: the record is intact, but the key
    it carries proves nothing about who signed it.

    \b
    Example:
      dsar verify record.json --public-key dsar-keys.pem --ledger ledger.json
    """
    try:
        bundle = load_json_file(bundle_file, "record bundle")
        trusted = keyring.load_public_key_file(public_key) if public_key else None
        exported = load_json_file(ledger_file, "ledger file") if ledger_file else None
        result = verify_bundle(bundle, public_keys=trusted, ledger=exported)
    except RecursionError:
        raise InvalidInput(f"{bundle_file} is nested too deeply to be a record bundle",
                           "pass the file `dsar record` wrote") from None
    origin_checked = trusted is not None
    if as_json:
        print_json({**result.to_dict(), "origin_checked": origin_checked})
    else:
        width = max(len(c.name) for c in result.checks)
        for check in result.checks:
            mark = "[green]pass[/]" if check.ok else "[red]FAIL[/]"
            console.print(styled(mark + "  {}  {}", check.name.ljust(width), check.detail))
        if not result.ok:
            console.print(styled("[red]verification failed:[/] {}", ", ".join(result.failed())))
        elif origin_checked:
            console.print(styled("[green]record verified[/]"))
        else:
            console.print(styled("[yellow]record intact, origin NOT checked:[/] it verifies "
                                 "with the key it carries, which anyone can make; give "
                                 "--public-key with the controller's published key"))
    if not result.ok:
        ctx.exit(exits.CHECK_FAILED)
    if not origin_checked:
        ctx.exit(exits.ORIGIN_UNCHECKED)


@click.group("keys")
def keys() -> None:
    """The Ed25519 keys that sign completion records and ledger checkpoints.

    Keys live in DSAR_SIGNING_KEYS_DIR. Back that folder up: records stay verifiable with the
    public keys, but only the private key can sign new ones.
    """


@keys.command("generate")
@json_option
def keys_generate(as_json: bool) -> None:
    """Create the keyring with its first signing key."""
    directory = Settings.from_env().signing_keys_dir
    keyid = keyring.generate(directory)
    if as_json:
        print_json({"keyid": keyid, "directory": str(directory)})
    else:
        console.print(f"new signing key {keyid} in {directory}")


@keys.command("rotate")
@json_option
def keys_rotate(as_json: bool) -> None:
    """Start signing with a new key. Old keys are kept, so records they signed still verify;
    publish the new public key (`dsar keys export-public`)."""
    directory = Settings.from_env().signing_keys_dir
    keyid = keyring.rotate(directory)
    if as_json:
        print_json({"keyid": keyid, "directory": str(directory)})
    else:
        console.print(f"signing with new key {keyid}; older keys are retired, not deleted")


@keys.command("export-public")
@click.option("-o", "--output", type=_FILE, help="Write to FILE instead of standard output.")
def keys_export_public(output: Path | None) -> None:
    """Print every public key (active and retired) as PEM: publish this for verifiers.
    With DSAR_SIGNING_KMS_KEY_ID or DSAR_SIGNING_KEY_FILE set, that key is the active one."""
    _write(export_public(Settings.from_env()), output, "the public keys")


@click.group("ledger")
def ledger() -> None:
    """The append-only ledger of completion records and its signed checkpoints."""


@ledger.command("export")
@click.option("-o", "--output", type=_FILE, required=True, help="The JSON file to write.")
@json_option
@pass_state
def ledger_export(state: CliState, output: Path, as_json: bool) -> None:
    """Write every ledger entry and checkpoint to a JSON file, for `dsar verify --ledger`."""
    with state.app.db.session() as session:
        summary = ledger_log.export_ledger(session, output)
    if as_json:
        print_json(summary)
    else:
        console.print(f"wrote {summary['size']} entries and {summary['checkpoints']} "
                      f"checkpoint(s) to {output}; root {summary['root']}")


@ledger.command("checkpoint")
@json_option
@pass_state
def ledger_checkpoint(state: CliState, as_json: bool) -> None:
    """Sign a checkpoint of the ledger now (nothing new if the last one is current)."""
    app = state.app
    with app.db.session() as session:
        made = ledger_log.issue_checkpoint(session, app)
        data = {"size": made.size, "root": made.root.hex(), "note": made.note,
                "issued_at": made.issued_at}
    if as_json:
        print_json(data)
    else:
        console.print(f"checkpoint of size {data['size']}, root {data['root']}")
        console.print(made.note, end="")


def _parse_day(_ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write YYYY-MM-DD",
                                 param=param) from None


@click.command("report")
@click.option("--from", "start", callback=_parse_day, metavar="DATE",
              help="First day of receipt to include (YYYY-MM-DD, in DSAR_TIMEZONE).")
@click.option("--to", "end", callback=_parse_day, metavar="DATE",
              help="Last day of receipt to include (inclusive).")
@click.option("--csv", "as_csv", is_flag=True, help="Print one CSV row per request.")
@click.option("--html", "as_html", is_flag=True,
              help="Write a dashboard page with charts (needs -o FILE).")
@click.option("--ccpa-7102", "ccpa_year", type=click.IntRange(1970, 9999), metavar="YEAR",
              help="Print the CCPA 11 CCR §7102 metrics of calendar year YEAR.")
@click.option("-o", "--output", type=_FILE, help="Write the page (or text) to FILE.")
@json_option
@pass_state
def report(state: CliState, start: date | None, end: date | None, as_csv: bool, as_html: bool,
           ccpa_year: int | None, output: Path | None, as_json: bool) -> None:
    """Requests answered, on time or not, for a reviewer or a regulator.

    Counts by kind and regime, the share answered on time, median and 95th percentile days to
    completion, extensions and refusals, and per request the fields CCPA (11 CCR §7101) and
    Colorado (Rule 6.11) ask a business to keep: dates and nature of request and response, how
    it was made, and the basis of any denial. No personal data.

    --html writes a dashboard (charts drawn in the page, nothing loaded from the network):
    requests per week, on-time share per month, days to complete, open requests by days left,
    outcomes per system, extensions and refusals by reason. --ccpa-7102 YEAR prints the
    metrics 11 CCR §7102(a) asks a business to publish, per request kind.

    \b
    Example:
      dsar report --from 2026-01-01 --html -o dashboard.html
      dsar report --ccpa-7102 2026 --json
    """
    if sum((as_csv, as_html, ccpa_year is not None)) > 1:
        raise InvalidInput("--csv, --html and --ccpa-7102 are different reports",
                           "choose one of them")
    if as_html and output is None:
        raise InvalidInput("--html writes a page, not text", "add -o FILE, e.g. -o report.html")
    app = state.app
    tz = app.settings.timezone
    if ccpa_year is not None:
        _ccpa_report(app, ccpa_year, as_json)
        return
    with app.db.session() as session:
        if as_html:
            from dsar.records.html import render_dashboard_html

            today = app.now().astimezone(ZoneInfo(tz)).date()
            page = render_dashboard_html(reports.build_dashboard(
                session, today=today, start=start, end=end, tz=tz))
            _write(page, output, "the dashboard")
            return
        data = reports.build_report(session, start=start, end=end, tz=tz)
    if as_csv:
        _write(reports.rows_csv(data["requests"]), output, "the CSV report")
        return
    if as_json:
        print_json(data)
        return
    s = data["summary"]
    share = "—" if s["on_time_share"] is None else f"{s['on_time_share']:.1%}"
    console.print(styled("[bold]{} request(s)[/] received {} to {} ({})", s["requests"],
                         start or "from the start", end or "now", tz))
    console.print(f"answered on time: {s['answered_on_time']}/{s['answered']} ({share}); "
                  f"days to complete: median {shown(s['median_days_to_complete'])}, "
                  f"p95 {shown(s['p95_days_to_complete'])}; extended {s['extended']}; "
                  f"refused {s['refused']}; cancelled {s['cancelled']}; open {s['open']}")
    console.print(table("by kind and regime", ["kind", "regime", "requests"],
                        [[x["kind"], x["regime"], x["requests"]]
                         for x in s["by_kind_and_regime"]]))
    console.print(table("requests", ["id", "received", "kind", "channel", "response",
                                     "responded", "on time", "denial basis"],
                        [[r["request_id"], r["received_on"], r["kind"], r["channel"],
                          r["response"], r["responded_on"], r["on_time"], r["denial_basis"]]
                         for r in data["requests"]], optional=("denial basis", "channel")))


def _ccpa_report(app: Any, year: int, as_json: bool) -> None:
    """``report --ccpa-7102 YEAR``: the §7102(a) metrics, per request kind."""
    tz = app.settings.timezone
    with app.db.session() as session:
        rows = reports.report_rows(session, start=date(year, 1, 1), end=date(year, 12, 31),
                                   tz=tz)
    data = reports.ccpa_7102(rows, year)
    if as_json:
        print_json(data)
        return
    console.print(styled("[bold]CCPA §7102 metrics for {}[/] (requests received 1 January to "
                         "31 December, dates in {}; regimes: {})", year, tz,
                         ", ".join(data["regimes"]) or "—"))
    console.print(table(None, ["kind", "received", "complied (whole or part)", "denied",
                               "median days", "mean days"],
                        [[x["kind"], x["received"],
                          x["complied_in_whole_or_part"], x["denied"],
                          x["median_days_to_respond"], x["mean_days_to_respond"]]
                         for x in data["kinds"]]))
    console.print("access and export are requests to know, erasure requests to delete; days "
                  "are calendar days from receipt to completion or refusal")
