"""The built-in system kinds: ``sql`` (SQLAlchemy), ``s3`` (boto3) and ``saas`` (HTTP APIs,
dispatched further by ``vendor``). See :mod:`dsar.kinds` for the interface.

They live beside their connectors, not in the domain, and reach the registry the way a
third-party kind does: as entry points of the ``dsar.kinds`` group, declared in dsar's own
``pyproject.toml``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any

from dsar.datamap.findings import Finding
from dsar.datamap.schema import S3System, SaaSSystem, SqlSystem
from dsar.kinds import Reach, SystemKind


class SqlKind(SystemKind):
    """Tables found by identities, references and provided keys (:func:`walk_sql_system`)."""

    name = "sql"
    model = SqlSystem
    connector = "connectors.sql:SqlConnector"

    def collections(self, system: SqlSystem) -> list[str]:
        return [t.name for t in system.tables]

    def spec(self, system: SqlSystem, collection: str) -> object | None:
        for table in system.tables:
            if collection in {table.name, f"{table.db_schema}.{table.name}"}:
                return table
        return None

    def lookups(self, system: SqlSystem) -> Iterator[tuple[str, str | None, str]]:
        for table in system.tables:
            for key in table.identities:
                yield key, table.name, "identities"

    def provided(self, system: SqlSystem) -> set[str]:
        return {key for table in system.tables for key in table.provides}

    def reach(self, system: SqlSystem, available: set[str]) -> Reach:
        from dsar.planning import walk_sql_system

        walk = walk_sql_system(system, available)
        provides = {k for t in system.tables if t.name in walk.matches for k in t.provides}
        return Reach(walk.matches, frozenset(provides), tuple(walk.discovery),
                     tuple(walk.erase_order), tuple(walk.notes))

    def cross_reference(self, system: SqlSystem, index: int, where: Any) -> list[Finding]:
        from dsar.datamap.loader import sql_cross_reference

        return sql_cross_reference(system, index, where)

    def check(self, system: SqlSystem, environ: Mapping[str, str], available: set[str],
              configured_only: bool) -> list[Finding]:
        """Missing tables and columns, identity columns of the wrong type, unreachable
        tables, erasures the database would refuse (:func:`connectors.sql_check.
        check_sql_system`); schemas only, never rows."""
        if configured_only and not environ.get(system.url_env):
            return []
        import sqlalchemy as sa

        from connectors.sql_check import check_sql_system
        from connectors.sql_engine import Catalog, begin, engine_for, resolve_url, translate_error
        from dsar.errors import ConnectorError

        try:
            url = resolve_url(system.url_env, environ, system.name)
            engine = engine_for(url, system.statement_timeout_seconds)
            catalog = Catalog.of(engine)
            catalog.invalidate()
            with begin(engine) as conn:
                found, _walk = check_sql_system(system, conn, catalog, available)
            return list(found)
        except ConnectorError as exc:
            problem, fix = exc.problem, exc.fix
        except sa.exc.SQLAlchemyError as exc:  # driver errors: report, keep checking others
            err = translate_error(exc, system.name)
            problem, fix = err.problem, err.fix
        return [Finding("error", system.name, None, None, problem, fix or "check the URL")]


class S3Kind(SystemKind):
    """Objects named by key or prefix templates, and shared files scanned by ``match``."""

    name = "s3"
    model = S3System
    connector = "connectors.s3:S3Connector"

    def collections(self, system: S3System) -> list[str]:
        return [o.name for o in system.objects] + [s.name for s in system.shared]

    def spec(self, system: S3System, collection: str) -> object | None:
        for spec in [*system.objects, *system.shared]:
            if spec.name == collection:
                return spec
        return None

    def lookups(self, system: S3System) -> Iterator[tuple[str, str | None, str]]:
        from dsar.datamap.loader import template_keys

        for obj in system.objects:
            for key in template_keys(obj.key or obj.prefix or ""):
                yield key, obj.name, "key/prefix"
        for shared in system.shared:
            for key in shared.match:
                yield key, shared.name, "match"

    def provided(self, system: S3System) -> set[str]:
        return set()

    def reach(self, system: S3System, available: set[str]) -> Reach:
        from dsar.datamap.loader import template_keys
        from dsar.planning import Match

        found: dict[str, tuple[Match, ...]] = {}
        for obj in system.objects:
            needed = template_keys(obj.key or obj.prefix or "")
            if needed and needed <= available:
                found[obj.name] = tuple(Match("key", (), k, path=(k, obj.name))
                                        for k in sorted(needed))
        for shared in system.shared:
            hits = [k for k in shared.match if k in available]
            if hits:
                found[shared.name] = tuple(
                    Match("key", (shared.match[k],), k, path=(k, shared.name)) for k in hits)
        return Reach(found)


class SaaSKind(SystemKind):
    """A vendor's resources, found by the vendor's lookups; the vendor's definition (shipped,
    ``vendor_file``, or a ``dsar.saas_vendors`` plug-in) says how, at run and check time."""

    name = "saas"
    model = SaaSSystem
    connector = "connectors.saas.connector:SaaSConnector"

    def collections(self, system: SaaSSystem) -> list[str]:
        return system.collection_names()

    def spec(self, system: SaaSSystem, collection: str) -> object | None:
        """The vendor definition's resource ``collection``: its ``label`` and ``category`` name
        SaaS data in bundles and records like a table's; None when the vendor cannot be read
        (``datamap check`` says why)."""
        from connectors.saas.loading import load_definition
        from connectors.saas.plugins import definition_for
        from dsar.errors import DsarError

        try:
            definition = (load_definition(system.vendor_file) if system.vendor_file
                          else definition_for(system.vendor))
        except DsarError:
            return None
        resource = definition.resources.get(collection)
        if resource is None:
            return None
        return SimpleNamespace(label=resource.label, category=resource.category)

    def lookups(self, system: SaaSSystem) -> Iterator[tuple[str, str | None, str]]:
        for key in system.identities:
            yield key, None, "identities"

    def reach(self, system: SaaSSystem, available: set[str]) -> Reach:
        from dsar.planning import Match

        hits = [k for k in system.identities if k in available]
        found = {name: tuple(Match("key", (system.identities[k],), k, path=(k, name))
                             for k in hits)
                 for name in (system.collection_names() if hits else ())}
        return Reach(found, frozenset(system.provides) if found else frozenset())

    def check(self, system: SaaSSystem, environ: Mapping[str, str], available: set[str],
              configured_only: bool) -> list[Finding]:
        from connectors.saas.check import check_saas_system

        return check_saas_system(system, environ)

