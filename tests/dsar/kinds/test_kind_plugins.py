"""A system kind from a third-party package, found through the ``dsar.kinds`` entry-point group.

The plug-in is a real distribution: a module and a ``*.dist-info`` with ``entry_points.txt`` in
a temporary folder put on ``sys.path``, so :mod:`importlib.metadata` finds it exactly as it
finds an installed package. Nothing of dsar is patched; the registry is reloaded around the
test.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import dsar.kinds as kinds_module
from connectors.base import ConnectorContext, open_connector
from dsar.bundles.describe import describe, order_key
from dsar.datamap.loader import parse_datamap
from dsar.errors import DataMapError
from dsar.planning import plan_request

PLUGIN = '''
from typing import Literal

from pydantic import Field

from connectors.base import Connector, ConnectorResult
from dsar.datamap.schema import ErasureSpec, SystemBase
from dsar.evidence import CollectionEvidence
from dsar.kinds import Reach, SystemKind
from dsar.planning import Match


class LdapSystem(SystemBase):
    kind: Literal["ldap"]
    base_dn: str
    attribute: str = "mail"
    erasure: ErasureSpec = Field(default_factory=lambda: ErasureSpec(action="delete"))


class LdapConnector(Connector):
    def count(self, keys):
        found = len(keys.get("email", ()))
        evidence = CollectionEvidence(self.system.name, "entries", "count", found=found)
        return ConnectorResult([evidence])

    collect = erase = count


class LdapKind(SystemKind):
    name = "ldap"
    model = LdapSystem
    connector = "dsar_ldap_plugin:LdapConnector"

    def collections(self, system):
        return ["entries"]

    def lookups(self, system):
        yield "email", "entries", "attribute"

    def reach(self, system, available):
        if "email" not in available:
            return Reach({})
        return Reach({"entries": (Match("key", (system.attribute,), "email",
                                        path=("email", "entries")),)})
'''

MAP = textwrap.dedent("""
    version: 1
    systems:
      - name: directory
        kind: ldap
        label: Staff directory
        base_dn: dc=example,dc=org
""")


def _install(folder: Path, name: str, module: str, group: str, entry: str) -> None:
    (folder / f"{module}.py").write_text(PLUGIN)
    info = folder / f"{name.replace('-', '_')}-1.0.dist-info"  # as installers name it
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")


@pytest.fixture
def reloaded_registry() -> Iterator[None]:
    def reset() -> None:
        kinds_module._KINDS.clear()
        kinds_module._LOADED.clear()
        kinds_module.datamap_model.cache_clear()

    reset()
    yield
    reset()


@pytest.fixture
def ldap_plugin(tmp_path: Path, reloaded_registry: None) -> Iterator[None]:
    _install(tmp_path, "dsar-ldap-plugin", "dsar_ldap_plugin", "dsar.kinds",
             "ldap = dsar_ldap_plugin:LdapKind")
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("dsar_ldap_plugin", None)


def test_a_plugin_kind_loads_plans_describes_and_connects(ldap_plugin: None) -> None:
    datamap = parse_datamap(MAP)
    system = datamap.system("directory")
    assert type(system).__name__ == "LdapSystem" and system.base_dn == "dc=example,dc=org"
    plan = plan_request(datamap, {"email": frozenset({"a@example.org"})}, "erasure")
    assert [(s.system, s.collection, s.action) for s in plan.steps] == [
        ("directory", "entries", "delete")]
    assert describe(datamap, "directory", "entries").system_label == "Staff directory"
    assert order_key(datamap, "directory", "entries")[:2] == (0, 0)
    with open_connector(system, ConnectorContext(hash_key=b"k" * 32)) as connector:
        result = connector.count({"email": frozenset({"a@example.org"})})
    assert [(e.collection, e.found) for e in result.evidence] == [("entries", 1)]


def test_a_plugin_kind_fields_are_validated_like_built_in_ones(ldap_plugin: None) -> None:
    with pytest.raises(DataMapError) as caught:
        parse_datamap(MAP.replace("base_dn:", "base_dnn:"))
    assert "unknown field 'base_dnn'" in str(caught.value)
    assert "did you mean 'base_dn'?" in f"{caught.value} {caught.value.fix}"


def test_without_the_plugin_the_kind_is_unknown_and_the_fix_lists_the_kinds(
        reloaded_registry: None) -> None:
    with pytest.raises(DataMapError) as caught:
        parse_datamap(MAP)
    message = f"{caught.value} {caught.value.fix}"
    assert "unknown system kind 'ldap'" in message
    assert "'kind: s3', 'kind: saas' or 'kind: sql'" in message


def test_a_broken_plugin_is_one_line_naming_its_entry_point(
        tmp_path: Path, reloaded_registry: None) -> None:
    _install(tmp_path, "dsar-broken", "dsar_broken_plugin", "dsar.kinds",
             "broken = dsar_broken_plugin:Missing")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(DataMapError) as caught:
            parse_datamap(MAP)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("dsar_broken_plugin", None)
    assert "system kind plug-in 'broken' (dsar_broken_plugin:Missing) failed to load" in str(
        caught.value)


def test_stale_dsar_metadata_without_the_built_in_kinds_is_one_line_naming_the_fix(
        tmp_path: Path, reloaded_registry: None) -> None:
    """A dsar install whose metadata predates the built-in kinds' entry points (a checkout
    not reinstalled): its dist-info comes first on the path and shadows the real one."""
    info = tmp_path / "dsar-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dsar\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[console_scripts]\ndsar = cli:main\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(DataMapError) as caught:
            parse_datamap(MAP)
    finally:
        sys.path.remove(str(tmp_path))
    assert "built-in system kinds (sql, s3, saas) are not registered" in str(caught.value)
    assert "pip install -e ." in (caught.value.fix or "")
