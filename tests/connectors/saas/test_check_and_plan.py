"""``dsar datamap check`` on SaaS systems, and how SaaS systems are planned."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dsar.datamap.check import check_datamap
from dsar.datamap.loader import parse_datamap
from dsar.planning import plan_request
from interfaces.commands.datamap import datamap
from interfaces.demo.emulators.stripe import StripeEmulator

MAP = """
systems:
  - name: payments
    kind: saas
    vendor: {vendor}
    token_env: STRIPE_API_KEY
    base_url_env: STRIPE_URL
    identities: {{email: email, stripe_customer_id: id}}
    provides: [stripe_customer_id]
    resources: [customers, charges]
"""


@pytest.fixture
def stripe() -> Iterator[tuple[StripeEmulator, str]]:
    emulator = StripeEmulator("sk_test_check")
    url = emulator.start()
    yield emulator, url
    emulator.stop()


def check(text: str, env: dict[str, str]) -> list[str]:
    findings = check_datamap(parse_datamap(text), env)
    return [f.one_line() for f in findings if f.severity == "error"]


def test_a_good_credential_passes_with_one_call(stripe: tuple[StripeEmulator, str]) -> None:
    emulator, url = stripe
    env = {"STRIPE_API_KEY": "sk_test_check", "STRIPE_URL": url}
    assert check(MAP.format(vendor="stripe"), env) == []
    assert emulator.log == [("GET", "/v1/customers")]


def test_each_mistake_is_one_line_with_its_fix(stripe: tuple[StripeEmulator, str],
                                               tmp_path: Path) -> None:
    _, url = stripe
    text = MAP.format(vendor="stripe")
    [missing] = check(text, {"STRIPE_URL": url})
    assert "STRIPE_API_KEY is not set" in missing and "set STRIPE_API_KEY" in missing
    [refused] = check(text, {"STRIPE_API_KEY": "sk_test_wrong", "STRIPE_URL": url})
    assert "refused the credential in STRIPE_API_KEY (HTTP 401)" in refused
    [unknown] = check(MAP.format(vendor="strype"), {"STRIPE_API_KEY": "x"})
    assert "unknown SaaS vendor 'strype'" in unknown
    assert "mailchimp, salesforce, segment, stripe" in unknown
    bad = tmp_path / "acme.yaml"
    bad.write_text("name: acme\nlabel: Acme\nbase_url: https://api.acme.test\n"
                   "auth: {type: bearer}\ncheck: {path: /me}\n"
                   "rate_limit: {calls: 5, seconds: 1}\nresources:\n"
                   "  users:\n    find: {email: {path: /users}}\n    erase: {}\n")
    custom = MAP.format(vendor="acme").replace(
        "    token_env", f"    vendor_file: {bad}\n    token_env")
    [malformed] = check(custom, {"STRIPE_API_KEY": "x"})
    assert f"{bad}:10: resources.users.erase: give exactly one of" in malformed
    assert "\n" not in missing + refused + unknown + malformed


def test_the_command_exits_1_on_a_refused_token(stripe: tuple[StripeEmulator, str],
                                                tmp_path: Path) -> None:
    _, url = stripe
    path = tmp_path / "map.yaml"
    path.write_text(MAP.format(vendor="stripe"))
    result = CliRunner().invoke(datamap, ["check", str(path), "--json"],
                                env={"STRIPE_API_KEY": "sk_live_nope", "STRIPE_URL": url})
    assert result.exit_code == 1, result.output
    assert "STRIPE_API_KEY" in json.loads(result.output)["findings"][0]["problem"]
    assert "sk_live_nope" not in result.output


def test_saas_resources_are_planned_and_provide_keys() -> None:
    text = MAP.format(vendor="stripe") + """
  - name: billing_files
    kind: s3
    bucket: invoices
    objects:
      - {name: pdfs, prefix: "invoices/{stripe_customer_id}/", category: financial.invoice}
"""
    plan = plan_request(parse_datamap(text), {"email": frozenset({"a@example.com"})},
                        "erasure")
    assert [s.collection for s in plan.steps_for("payments")] == ["customers", "charges"]
    files = plan.task("billing_files:erase")
    assert files.needs == ("stripe_customer_id",)
    assert files.depends_on == ("payments:erase",)
    assert plan.unreachable == ()


def test_keys_a_saas_system_provides_are_not_warned_about() -> None:
    warnings: list = []
    parse_datamap(MAP.format(vendor="stripe") + """
  - name: billing_files
    kind: s3
    bucket: invoices
    objects:
      - {name: pdfs, prefix: "invoices/{stripe_customer_id}/", category: financial.invoice}
""", warnings=warnings)
    assert not [w for w in warnings if "stripe_customer_id" in w.problem]
