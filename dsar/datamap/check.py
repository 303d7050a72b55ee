"""Check a data map against the live systems it names.

:func:`check_datamap` returns :class:`~dsar.datamap.findings.Finding` objects, errors first. It
starts with the map's own cross-reference findings, then, for every ``kind: sql`` system whose
URL variable is set in ``environ``, runs :func:`connectors.sql_check.check_sql_system`: missing
tables and columns, identity columns of the wrong type, unreachable tables, and erasure plans
the database would refuse. It reads schemas only; it never reads or changes rows. A ``kind:
saas`` system gets :func:`connectors.saas.check.check_saas_system`: its vendor, its credential
variable, and one cheap authenticated call. S3 systems are checked by their connector when
they run. Each system's kind supplies its check (:meth:`dsar.kinds.SystemKind.check`), so a
plug-in kind is checked the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from dsar.datamap.findings import REQUEST_IDENTITIES, Finding
from dsar.datamap.loader import cross_reference, provided_keys
from dsar.datamap.schema import DataMap
from dsar.kinds import systems_of


def check_datamap(datamap: DataMap, environ: Mapping[str, str],
                  configured_only: bool = False) -> list[Finding]:
    """Every finding for ``datamap``; errors before warnings, then in map order. With
    ``configured_only``, SQL systems whose URL variable is not set are skipped (not an
    error)."""
    findings = list(cross_reference(datamap))
    available = REQUEST_IDENTITIES | provided_keys(datamap)
    for system, kind in systems_of(datamap.systems):
        findings += kind.check(system, environ, available, configured_only)
    return sorted(findings, key=lambda f: f.severity != "error")
