"""The demo's SaaS accounts: the emulators it starts from the package hold the subject, and the
demo data map reaches them with the variables the demo sets."""

from __future__ import annotations

from connectors.base import ConnectorContext, open_connector
from dsar.datamap.check import check_datamap
from dsar.datamap.loader import load_datamap
from dsar.planning import plan_request
from interfaces.demo.run import DATAMAP
from interfaces.demo.saas import saas_emulators

PEOPLE = [{"email": f"person{i}@example.org", "first_name": "Ada", "last_name": f"L{i}"}
          for i in range(8)]


def test_demo_saas_systems_reach_the_subject_on_the_emulators() -> None:
    datamap = load_datamap(DATAMAP)
    plan = plan_request(datamap, {"email": frozenset({PEOPLE[0]["email"]})}, "erasure")
    saas_steps = {(s.system, s.collection) for s in plan.steps if s.system in
                  ("payments", "newsletter")}
    assert ("payments", "customers") in saas_steps
    assert ("newsletter", "members") in saas_steps
    with saas_emulators(PEOPLE) as endpoints:
        environ = {**endpoints.environment(), "DSAR_RATE_LIMIT_URL": "memory://"}
        saas_only = datamap.model_copy(update={"systems": [
            s for s in datamap.systems if s.kind == "saas"]})
        assert [f for f in check_datamap(saas_only, environ) if f.severity == "error"] == []
        found = {}
        for system in saas_only.systems:
            context = ConnectorContext(hash_key=b"k" * 32, environ=environ)
            with open_connector(system, context) as connector:
                result = connector.count({"email": frozenset({PEOPLE[0]["email"]})})
            found.update({(system.name, e.collection): e.found for e in result.evidence})
        assert found[("payments", "customers")] == 1
        assert found[("newsletter", "members")] == 2  # the subject is in both audiences
        assert found[("newsletter", "activity")] == 4


def test_saas_data_is_labelled_from_the_vendor_definition() -> None:
    """Bundles and records name a SaaS resource by its vendor file's label and category, as a
    table by its data map entry; a vendor dsar cannot read falls back to the plain name."""
    from dsar.bundles.describe import describe
    from dsar.datamap.loader import parse_datamap

    datamap = load_datamap(DATAMAP)
    customers = describe(datamap, "payments", "customers")
    assert customers.label == "Stripe customer"
    assert [c.code for c in customers.categories] == ["contact.profile"]
    assert describe(datamap, "newsletter", "members").label == "Mailchimp audience memberships"
    unknown = parse_datamap(
        "systems:\n  - {name: crm, kind: saas, vendor: nosuchvendor, token_env: CRM_TOKEN,\n"
        "     identities: {email: email}, resources: [people]}\n")
    facts = describe(unknown, "crm", "people")
    assert facts.label == "People" and facts.categories == ()
