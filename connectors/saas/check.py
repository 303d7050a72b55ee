"""``dsar datamap check`` for a ``kind: saas`` system.

Loads the vendor definition (an unknown vendor lists the known ones; a malformed vendor file
names ``file:line``), checks the listed resources and lookups exist, confirms the credential
variables are set, and makes the definition's one cheap authenticated call (``check``). Every
problem is one :class:`~dsar.datamap.findings.Finding` with its fix; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.base import ConnectorContext
from connectors.saas.connector import SaaSConnector
from dsar.datamap.findings import Finding
from dsar.datamap.schema import SaaSSystem
from dsar.errors import ConnectorError

CHECK_KEY = b"dsar datamap check"


def check_saas_system(system: SaaSSystem, environ: Mapping[str, str]) -> list[Finding]:
    """Findings for ``system``; empty when the vendor accepted the credential."""
    def error(problem: str, fix: str | None) -> list[Finding]:
        return [Finding("error", system.name, None, None, problem, fix or "see docs/saas.md")]

    try:
        connector = SaaSConnector(system, ConnectorContext(hash_key=CHECK_KEY,
                                                           environ=dict(environ)))
    except ConnectorError as exc:
        return error(exc.problem, exc.fix)
    findings: list[Finding] = []
    lookups = connector.definition.lookups()
    for key, lookup in system.identities.items():
        if lookup not in lookups:
            findings.append(Finding(
                "error", system.name, None, None,
                f"identities: {key} -> {lookup!r}, but {connector.definition.label} finds "
                f"items by {', '.join(sorted(lookups))} only",
                f"map the key to one of: {', '.join(sorted(lookups))}"))
    offered = {k for r in connector.definition.resources.values() for k in r.provides}
    for key in system.provides:
        if key not in offered:
            findings.append(Finding(
                "error", system.name, None, None,
                f"provides {key!r}, which {connector.definition.label} items do not carry",
                f"use one of: {', '.join(sorted(offered)) or 'none'}"))
    try:
        with connector:
            connector.check()
    except ConnectorError as exc:
        findings += error(exc.problem, exc.fix)
    return findings
