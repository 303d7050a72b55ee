"""Requests through the real worker code (embedded default: SQLite state, in-process broker)
reach Stripe and Mailchimp emulators: access collects, erasure erases and completes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import main
from tests.connectors.saas.harness import Harness, make_harness

SUBJECT = "jenny.rosen@example.com"
MAP = """
controller: {name: Example GmbH}
systems:
  - name: payments
    kind: saas
    vendor: stripe
    token_env: STRIPE_API_KEY
    base_url_env: STRIPE_URL
    provides: [stripe_customer_id]
    resources: [customers, payment_methods, charges, invoices]
  - name: newsletter
    kind: saas
    vendor: mailchimp
    label: Newsletter
    token_env: MAILCHIMP_API_KEY
    base_url_env: MAILCHIMP_URL
    resources: [members, activity]
"""


@pytest.fixture
def vendors() -> Iterator[tuple[Harness, Harness]]:
    stripe, mailchimp = make_harness("stripe"), make_harness("mailchimp")
    yield stripe, mailchimp
    stripe.emulator.stop()
    mailchimp.emulator.stop()


def run(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, args, env=env)


def test_access_then_erasure(vendors: tuple[Harness, Harness], tmp_path: Path) -> None:
    stripe, mailchimp = vendors
    stripe.seed(SUBJECT)
    mailchimp.seed(SUBJECT)
    stripe.seed("someone@example.com")
    datamap = tmp_path / "datamap.yaml"
    datamap.write_text(MAP)
    env = {"DSAR_DATA_DIR": str(tmp_path / "data"), "DSAR_DATAMAP": str(datamap),
           "STRIPE_API_KEY": stripe.token, "STRIPE_URL": stripe.url,
           "MAILCHIMP_API_KEY": mailchimp.token, "MAILCHIMP_URL": mailchimp.url,
           "DSAR_RATE_LIMIT_URL": "memory://"}
    access = run(["submit", "access", "--email", SUBJECT, "--identity-verified", "account",
                  "--wait"], env)
    assert access.exit_code == 0, access.output
    erasure = run(["submit", "erasure", "--email", SUBJECT, "--identity-verified",
                   "account", "--wait"], env)
    assert erasure.exit_code == 0, erasure.output
    assert stripe.holds(SUBJECT) == 0 and mailchimp.holds(SUBJECT) == 0
    assert stripe.holds("someone@example.com") == 2
    listed = json.loads(run(["list", "--json"], env).stdout)
    assert sorted(r["state"] for r in listed) == ["completed", "completed"]
    shown = {r["kind"]: json.loads(run(["show", r["id"], "--json"], env).stdout)
             for r in listed}
    collected = {(s["system"], s["collection"]): s["collected"]
                 for s in shown["access"]["systems"]}
    assert collected == {("payments", "customers"): 1, ("payments", "payment_methods"): 1,
                         ("payments", "charges"): 2, ("payments", "invoices"): 1,
                         ("newsletter", "members"): 2, ("newsletter", "activity"): 6}
    erased = {(s["system"], s["collection"]): s for s in shown["erasure"]["systems"]}
    assert erased[("payments", "customers")]["deleted"] == 1
    assert erased[("payments", "charges")]["retained"] == 2
    assert erased[("newsletter", "members")]["deleted"] == 2
    assert all(s["remaining"] == 0 for s in erased.values())


def test_a_refused_credential_puts_the_request_in_needs_attention(
        vendors: tuple[Harness, Harness], tmp_path: Path) -> None:
    stripe, mailchimp = vendors
    stripe.seed(SUBJECT)
    datamap = tmp_path / "datamap.yaml"
    datamap.write_text(MAP)
    env = {"DSAR_DATA_DIR": str(tmp_path / "data"), "DSAR_DATAMAP": str(datamap),
           "STRIPE_API_KEY": "sk_test_revoked", "STRIPE_URL": stripe.url,
           "MAILCHIMP_API_KEY": mailchimp.token, "MAILCHIMP_URL": mailchimp.url,
           "DSAR_RATE_LIMIT_URL": "memory://"}
    erasure = run(["submit", "erasure", "--email", SUBJECT, "--identity-verified",
                   "account", "--wait"], env)
    assert erasure.exit_code == 7, erasure.output
    assert "saas_refused_credential" in erasure.output
    assert "set STRIPE_API_KEY to a valid credential" in erasure.output
    assert "sk_test_revoked" not in erasure.output
    assert stripe.emulator.calls == 1 and stripe.holds(SUBJECT) == 2
