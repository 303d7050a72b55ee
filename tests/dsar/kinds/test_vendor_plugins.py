"""A SaaS vendor from a third-party package, through the ``dsar.saas_vendors`` entry points.

The package is a real distribution (a module and a ``dist-info`` in a temporary folder on
``sys.path``) whose entry point names its YAML definition; dsar's runtime then talks to the
vendor's emulator over HTTP exactly as it does for a shipped vendor."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.base import ConnectorContext, open_connector
from connectors.saas.plugins import all_vendors, definition_for
from dsar.datamap.schema import SaaSSystem
from dsar.errors import DataMapError
from tests.connectors.saas.acme_emulator import ACME_YAML, AcmeEmulator


@pytest.fixture
def acme_package(tmp_path: Path) -> Iterator[None]:
    (tmp_path / "acme.yaml").write_text(ACME_YAML)
    (tmp_path / "dsar_acme.py").write_text(
        "from pathlib import Path\nDEFINITION = Path(__file__).with_name('acme.yaml')\n")
    info = tmp_path / "dsar_acme-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dsar-acme\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dsar.saas_vendors]\nacme = dsar_acme:DEFINITION\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("dsar_acme", None)


def test_a_plugin_vendor_is_listed_and_runs_on_the_one_runtime(acme_package: None) -> None:
    assert "acme" in all_vendors() and "stripe" in all_vendors()
    assert definition_for("acme").name == "acme"
    emulator = AcmeEmulator()
    url = emulator.start()
    try:
        emulator.add_user("ada@example.com", "+4930123", notes=2, tickets=1, events=1)
        system = SaaSSystem(name="helpdesk", kind="saas", vendor="acme",
                            token_env="ACME_SECRET", client_id_env="ACME_CLIENT",
                            base_url_env="U", resources=["users", "notes"])
        env = {"ACME_SECRET": "acme-secret", "ACME_CLIENT": "acme-client", "U": url,
               "DSAR_RATE_LIMIT_URL": "memory://"}
        with open_connector(system, ConnectorContext(hash_key=b"k" * 32, environ=env)) as conn:
            result = conn.count({"email": frozenset({"ada@example.com"})})
    finally:
        emulator.stop()
    assert {e.collection: e.found for e in result.evidence} == {"users": 1, "notes": 2}


def test_an_unknown_vendor_lists_shipped_and_plugin_vendors(acme_package: None) -> None:
    with pytest.raises(DataMapError) as caught:
        definition_for("acne")
    assert caught.value.problem == "unknown SaaS vendor 'acne'"
    assert "acme" in (caught.value.fix or "") and "stripe" in (caught.value.fix or "")
