"""Run the demo: build the sample company (a database, an S3 bucket, and Stripe and Mailchimp
accounts on local emulators), then an access, an export and an erasure request
for one person through the real worker code on the in-process broker, and verify each
completion record.

The demo sets its own ``DSAR_*`` variables (state, data map, exports, keys all inside the demo
folder) so it never touches a real configuration.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from dsar import requests
from dsar.app import App
from dsar.datamap.loader import load_datamap
from dsar.db.models import Bundle, EvidenceRow
from dsar.identities import parse_identities, subject_keys
from dsar.planning import plan_request
from dsar.records import keys as keyring
from dsar.records.ledger import export_ledger
from dsar.records.record_bundle import make_bundle
from dsar.records.verify import verify_bundle
from interfaces.demo.company import build_database, fill_bucket
from interfaces.demo.saas import saas_emulators
from workflows.runtime import InProcessFleet, wait_for

BUCKET = "northwind-customer-files"
DATAMAP = Path(__file__).with_name("datamap.yaml")
KINDS = ("access", "export", "erasure")


@dataclass
class DemoResult:
    """What the demo did, for ``--json`` and for CI: one entry per request."""

    folder: str
    subject: str
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def all_verified(self) -> bool:
        return len(self.requests) == len(KINDS) and all(r["verified"] for r in self.requests)


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 and a free port, for the demo's bucket."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def demo_environment(folder: Path, s3_endpoint: str) -> dict[str, str]:
    """The demo's settings and the variables its data map names, over the process's
    environment (which may choose the time zone and holiday calendar)."""
    return {
        "DSAR_TIMEZONE": "Europe/Berlin",
        "DSAR_HOLIDAY_CALENDAR": "DE",
        **os.environ,
        "DSAR_DATA_DIR": str(folder / "state"),
        "DSAR_DATABASE_URL": f"sqlite:///{folder / 'state' / 'state.sqlite3'}",
        "DSAR_BROKER_URL": "memory://",
        "DSAR_DATAMAP": str(folder / "datamap.yaml"),
        "DSAR_EXPORT_URL": str(folder / "exports"),
        "DSAR_SIGNING_KEYS_DIR": str(folder / "state" / "signing-keys"),
        "DSAR_APPROVAL_REQUIRED": "",
        "DSAR_DEMO_SHOP_URL": f"sqlite:///{folder / 'shop.sqlite3'}",
        "DSAR_DEMO_S3_ENDPOINT": s3_endpoint,
        **S3_CREDENTIALS,
    }


#: moto's server takes any credentials; the demo's bucket and its S3 connector use these.
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
                  "AWS_SESSION_TOKEN": "", "AWS_DEFAULT_REGION": "us-east-1"}


def run_demo(folder: Path, console: Console, customers: int = 300) -> DemoResult:
    """Build the company in ``folder`` (replacing an earlier demo there) and run the requests.
    The demo's settings go to its App (the process's environment is left as it is)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    with ExitStack() as stack:
        endpoint = stack.enter_context(s3_server())
        subject, people = build_database(folder / "shop.sqlite3", customers)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="demo", aws_secret_access_key="demo")
        fill_bucket(s3, BUCKET, people)
        saas = stack.enter_context(saas_emulators(people))
        environ = {**demo_environment(folder, endpoint), **saas.environment()}
        shutil.copyfile(DATAMAP, folder / "datamap.yaml")
        console.print(Text.assemble(("Sample company", "bold"),
                                    f" in {folder}: {customers} customers in shop.sqlite3, "
                                    f"files in s3://{BUCKET} (moto on {endpoint}), "
                                    f"payments in Stripe ({saas.stripe}) and a newsletter "
                                    f"in Mailchimp ({saas.mailchimp}), both local emulators, "
                                    "described by datamap.yaml"))
        console.print(Text.assemble(("Data subject", "bold"),
                                    f": {subject.name} <{subject.email}>\n"))
        app = App.from_env(environ)
        app.environ = environ  # the data map's *_env names, for the connectors
        keyring.generate(app.settings.signing_keys_dir)
        result = DemoResult(folder=str(folder), subject=subject.email)
        identities = parse_identities([subject.email])
        show_plan(app, console, identities)
        with InProcessFleet(app, threads=4, watch_interval=60):
            for kind in KINDS:
                result.requests.append(run_one(app, console, kind, identities, folder))
        ledger_file = folder / "records" / "ledger.json"
        with app.db.session() as session:
            export_ledger(session, ledger_file)
    return result


def show_plan(app: App, console: Console, identities: list[Any]) -> None:
    datamap = load_datamap(app.settings.datamap_path)
    plan = plan_request(datamap, subject_keys(identities), "erasure")
    table = Table(title="The erasure plan (dsar plan erasure --email …)", title_justify="left")
    for column in ("order", "system", "collection", "action", "kept because"):
        table.add_column(column)
    for step in plan.steps:
        table.add_row(str(step.order), step.system, step.collection, step.action,
                      step.retain_ground or "")
    console.print(table)


def run_one(app: App, console: Console, kind: str, identities: list[Any],
            folder: Path) -> dict[str, Any]:
    submitted = requests.submit(app, kind, identities, submitted_by="demo",
                                identity_method="demo: signed in to their account")
    request_id = submitted.request.id
    started = time.monotonic()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task(f"{kind} {request_id}", total=None)
        request = wait_for(app, request_id, timeout=120, on_progress=lambda r, d, t:
                           progress.update(bar, completed=d, total=t or None,
                                           description=f"{kind} {request_id}: {r.state}"))
    elapsed = time.monotonic() - started
    console.rule(f"{kind} request {request_id}: {request.state} in {elapsed:.1f} s")
    entry: dict[str, Any] = {"kind": kind, "id": request_id, "state": request.state,
                             "seconds": round(elapsed, 2), "verified": False}
    if request.state != "completed":
        console.print(Text.assemble(("needs attention:", "red"),
                                    f" {request.attention_reason}"))
        return entry
    with app.db.session() as session:
        evidence = session.scalars(sa.select(EvidenceRow).where(
            EvidenceRow.request_id == request_id).order_by(EvidenceRow.id)).all()
        bundle = session.scalars(sa.select(Bundle).where(
            Bundle.request_id == request_id)).one_or_none()
        record_bundle = make_bundle(session, app, request_id)
    print_evidence(console, kind, [e.body for e in evidence])
    if bundle is not None:
        entry["bundle"] = bundle.location
        console.print(f"bundle: {bundle.location} ({bundle.size:,} bytes, encrypted at rest; "
                      f"`dsar bundle {request_id}` gives a download link)")
    record_file = folder / "records" / f"{request_id}.json"
    record_file.parent.mkdir(exist_ok=True)
    record_file.write_text(json.dumps(record_bundle, indent=2))
    check = verify_bundle(record_bundle,
                          public_keys=keyring.public_keys(app.settings.signing_keys_dir))
    entry["verified"] = check.ok
    entry["record"] = str(record_file)
    marks = ", ".join(f"{c.name} {'ok' if c.ok else 'FAILED'}" for c in check.checks)
    status = ("verified", "green") if check.ok else ("NOT verified", "red")
    console.print(Text.assemble(f"completion record {record_file.name}: ", status,
                                f" ({marks})\n"))
    return entry


def print_evidence(console: Console, kind: str, bodies: list[dict[str, Any]]) -> None:
    """What each system found (and, for an erasure, did), fitted to ``console``'s width
    without cutting systems or collections: the reasons and details go first when narrow."""
    from interfaces.commands.output import table

    columns = ["system", "collection", "found"]
    columns += ["collected"] if kind != "erasure" else ["deleted", "masked", "retained",
                                                         "left", "kept because", "details"]
    rows = []
    for body in bodies:
        row = [body["system"], body["collection"], str(body["found"])]
        if kind != "erasure":
            row.append(str(body["collected"]))
        else:
            remaining = body.get("remaining")
            details = ", ".join(f"{k.replace('_', ' ')} {v}"
                                for k, v in sorted(body.get("counts", {}).items()) if v)
            row += [str(body["deleted"]), str(body["masked"]), str(body["retained"]),
                    "—" if remaining is None else str(remaining),
                    body.get("retained_ground") or "—", details or "—"]
        rows.append(row)
    console.print(table("found per system" if kind != "erasure" else "erasure evidence",
                        columns, rows, optional=("details", "kept because"),
                        width=console.width))
