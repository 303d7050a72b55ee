"""Check a data map against the live systems it names.

:func:`check_datamap` returns :class:`~dsar.datamap.findings.Finding` objects, errors first. It
starts with the map's own cross-reference findings, then, for every ``kind: sql`` system whose
URL variable is set in ``environ``, runs :func:`connectors.sql_check.check_sql_system`: missing
tables and columns, identity columns of the wrong type, unreachable tables, and erasure plans
the database would refuse. It reads schemas only; it never reads or changes rows. A ``kind:
saas`` system gets :func:`connectors.saas.check.check_saas_system`: its vendor, its credential
variable, and one cheap authenticated call. S3 systems are checked by their connector when
they run.
"""

from __future__ import annotations

from collections.abc import Mapping

from dsar.datamap.findings import REQUEST_IDENTITIES, Finding
from dsar.datamap.loader import cross_reference, provided_keys
from dsar.datamap.schema import DataMap, SaaSSystem, SqlSystem
from dsar.errors import ConnectorError


def check_datamap(datamap: DataMap, environ: Mapping[str, str],
                  configured_only: bool = False) -> list[Finding]:
    """Every finding for ``datamap``; errors before warnings, then in map order. With
    ``configured_only``, SQL systems whose URL variable is not set are skipped (not an
    error)."""
    from connectors.sql_check import check_sql_system
    from connectors.sql_engine import Catalog, begin, engine_for, resolve_url, translate_error

    findings = list(cross_reference(datamap))
    available = REQUEST_IDENTITIES | provided_keys(datamap)
    for system in datamap.systems:
        if isinstance(system, SaaSSystem):
            from connectors.saas.check import check_saas_system

            findings += check_saas_system(system, environ)
            continue
        if not isinstance(system, SqlSystem):
            continue
        if configured_only and not environ.get(system.url_env):
            continue
        try:
            url = resolve_url(system.url_env, environ, system.name)
            engine = engine_for(url, system.statement_timeout_seconds)
            catalog = Catalog.of(engine)
            catalog.invalidate()
            with begin(engine) as conn:
                found, _walk = check_sql_system(system, conn, catalog, available)
            findings += found
        except ConnectorError as exc:
            findings.append(Finding("error", system.name, None, None, exc.problem,
                                    exc.fix or "check the URL"))
        except Exception as exc:  # driver errors: report, keep checking other systems
            import sqlalchemy as sa

            if not isinstance(exc, sa.exc.SQLAlchemyError):
                raise
            err = translate_error(exc, system.name)
            findings.append(Finding("error", system.name, None, None, err.problem,
                                    err.fix or "check the URL"))
    return sorted(findings, key=lambda f: f.severity != "error")
