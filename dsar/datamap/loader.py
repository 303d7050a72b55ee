"""Read a data map file: YAML -> validated :class:`~dsar.datamap.schema.DataMap`.

Contract: :func:`parse_datamap` and :func:`load_datamap` either return a valid map or raise
:class:`~dsar.errors.DataMapError` — for any input whatsoever, never another exception. The
error names the place (``file:line`` and the dotted path such as ``systems[0].tables[2].erasure``)
and says what to write instead. All problems found are listed, not only the first.

Beyond the field-by-field validation of the schema, cross references are checked: references
and ``erase_after`` must name tables of the same system, a reference's ``to`` columns must be
columns the referenced entry names, and masked columns must be listed under ``columns`` (with
their category). Key names that no collection provides and that are not request identities are
reported as warnings (into the ``warnings`` list when one is given): a request must then give
them with ``--id``. So is every ``# note:`` comment line (what ``import-fides`` could not
translate), until someone deletes it.
"""

from __future__ import annotations

import difflib
import re
import string
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dsar.datamap.findings import REQUEST_IDENTITIES, Finding, raise_for_errors
from dsar.datamap.schema import DataMap, SqlSystem
from dsar.datamap.yaml_guard import ALIAS_EXPANSION_LIMIT as ALIAS_EXPANSION_LIMIT
from dsar.datamap.yaml_guard import check_alias_expansion
from dsar.errors import DataMapError
from dsar.kinds import datamap_model, kind_of, kinds, systems_of

PathT = tuple[str | int, ...]
DOCS = "see docs/datamap.md"
CREDENTIAL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
PATTERN_HELP = {
    r"^[a-z][a-z0-9_]*$": "lower-case letters, digits and _, starting with a letter "
    "(e.g. customer_id)",
    r"^[A-Z_][A-Z0-9_]*$": "the NAME of an environment variable in capitals (e.g. SHOP_DB_URL)",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "a column or table name: letters, digits and _",
    r"^[a-z][a-z0-9_-]*$": "lower-case letters, digits, _ and -, starting with a letter",
}


def load_datamap(path: str | Path, warnings: list[Finding] | None = None) -> DataMap:
    """Read and validate the data map at ``path``; see :func:`parse_datamap`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataMapError(
            f"data map {path} does not exist",
            "give the path of a data map file (or set DSAR_DATAMAP); "
            "`dsar datamap discover` writes a first one",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataMapError(
            f"cannot read data map {path}: {exc}", "give a readable UTF-8 file"
        ) from None
    return parse_datamap(text, str(path), warnings)


def parse_datamap(
    text: str, source_name: str = "<datamap>", warnings: list[Finding] | None = None
) -> DataMap:
    """Validate YAML ``text``; ``source_name`` is used in messages. Raises DataMapError."""
    data, lines = _read_yaml(text, source_name)
    errors: list[Finding] = []
    _reject_credentials(data, (), lines, source_name, errors)
    try:
        datamap = datamap_model().model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            errors.append(_translate(err, data, lines, source_name))
        raise_for_errors(errors, f"data map {source_name}")
        raise AssertionError("unreachable") from None
    except (TypeError, ValueError, RecursionError) as exc:  # pragma: no cover - defensive
        raise DataMapError(f"{source_name}: data map is malformed ({exc})", DOCS) from None
    raise_for_errors(errors, f"data map {source_name}")
    found = cross_reference(datamap, lambda p: _where(source_name, lines, p))
    raise_for_errors(found, f"data map {source_name}")
    if warnings is not None:
        warnings.extend(found)
        warnings.extend(open_notes(text, source_name))
    return datamap


def open_notes(text: str, source_name: str) -> list[Finding]:
    """A warning for every ``# note:`` comment line (what an import could not translate):
    each stays a warning until someone resolves it and deletes the line."""
    return [Finding("warning", None, None, None, f"open note (line {number}): "
                    f"{line.strip().removeprefix('# note:').strip()}",
                    "resolve it in the map, then delete the '# note:' line",
                    f"{source_name}:{number}")
            for number, line in enumerate(text.splitlines(), 1)
            if line.lstrip().startswith("# note:")]


# -- YAML with line numbers ------------------------------------------------------------------


def _read_yaml(text: str, source: str) -> tuple[Any, dict[PathT, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            raise DataMapError(f"{source}: the data map is empty", f"write one; {DOCS}")
        check_alias_expansion(node, source)
        lines: dict[PathT, int] = {}
        _record_lines(node, (), lines, set(), source)
        data = yaml.SafeLoader(text).get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{source}:{mark.line + 1}" if mark else source
        raise DataMapError(
            f"{at}: not valid YAML: {exc.problem or exc.context}",
            "fix the YAML syntax (indentation, a missing ':' or an unclosed quote)",
        ) from None
    except yaml.YAMLError as exc:
        raise DataMapError(f"{source}: not valid YAML: {exc}", "fix the YAML syntax") from None
    except RecursionError:
        raise DataMapError(f"{source}: the YAML nests too deeply", "flatten it") from None
    return data, lines


def _record_lines(
    node: yaml.Node, path: PathT, lines: dict[PathT, int], stack: set[int], source: str
) -> None:
    if id(node) in stack:
        raise DataMapError(
            f"{source}:{node.start_mark.line + 1}: a YAML alias refers to itself",
            "write the value out instead of using a recursive anchor",
        )
    lines.setdefault(path, node.start_mark.line + 1)
    stack.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key in seen and key != "<<":
                raise DataMapError(
                    f"{source}:{key_node.start_mark.line + 1}: key {key!r} appears twice",
                    "keep one of them; a repeated key silently replaces the first",
                )
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _record_lines(value_node, (*path, key), lines, stack, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, index), lines, stack, source)
    stack.discard(id(node))


def _where(source: str, lines: dict[PathT, int], path: PathT) -> str:
    probe = path
    while probe and probe not in lines:
        probe = probe[:-1]
    line = lines.get(probe)
    dotted = dotted_path(path)
    return f"{source}:{line} ({dotted})" if line else f"{source} ({dotted or 'top level'})"


def dotted_path(path: PathT) -> str:
    """``("systems", 0, "tables", 2)`` -> ``systems[0].tables[2]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- pydantic errors -> findings -------------------------------------------------------------


def _data_path(data: Any, loc: tuple[Any, ...]) -> PathT:
    """Pydantic's ``loc`` minus union tags, following the data as far as it goes."""
    path: list[str | int] = []
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            current = current[part]
            path.append(part)
        elif isinstance(current, dict) and isinstance(part, str) and part == loc[-1]:
            path.append(part)  # a missing field: name it
        elif not isinstance(current, dict | list):
            break
    return tuple(path)


def _unwrap(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(tp) for t in _unwrap(arg)]
    return [tp]


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class whose field ``loc[-1]`` is (best effort, None when unsure)."""
    candidates: list[Any] = [datamap_model()]
    for part in loc[:-1]:
        nxt: list[Any] = []
        for tp in candidates:
            for t in _unwrap(tp):
                origin, args = typing.get_origin(t), typing.get_args(t)
                if origin is list and isinstance(part, int):
                    nxt.append(args[0])
                elif origin is dict and args:
                    nxt.append(args[1])
                elif isinstance(t, type) and issubclass(t, BaseModel) and isinstance(part, str):
                    fields = {f.alias or n: f for n, f in t.model_fields.items()}
                    if part in fields:
                        nxt.append(fields[part].annotation)
                    elif "kind" in t.model_fields and part in typing.get_args(
                        t.model_fields["kind"].annotation
                    ):
                        nxt.append(t)
        candidates = nxt
    models = [t for tp in candidates for t in _unwrap(tp)
              if isinstance(t, type) and issubclass(t, BaseModel)]
    return models[0] if len(models) == 1 else None


def _kind_choices() -> str:
    """``'kind: s3', 'kind: saas' or 'kind: sql'`` for every registered kind."""
    names = [f"'kind: {name}'" for name in kinds()]
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _translate(err: Any, data: Any, lines: dict[PathT, int], source: str) -> Finding:
    loc = tuple(err.get("loc", ()))
    path = _data_path(data, loc)
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    name = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = sorted(f.alias or n for n, f in model.model_fields.items()) if model else []
        problem = f"unknown field {name!r}"
        if name in ("url", "password", "dsn", "token"):
            fix = "never put connection strings or secrets in the file: put it in an " \
                  "environment variable and name that variable (url_env: SHOP_DB_URL)"
        else:
            close = difflib.get_close_matches(name, allowed, n=1)
            fix = (f"did you mean {close[0]!r}? " if close else "remove it; ") + (
                f"this entry accepts: {', '.join(allowed)}" if allowed else DOCS
            )
    elif kind == "missing":
        problem, fix = f"{name!r} is required here", f"add '{name}: …' ({DOCS})"
    elif kind == "union_tag_not_found":
        problem, fix = "this system has no 'kind'", f"add {_kind_choices()}"
    elif kind == "union_tag_invalid":
        problem = f"unknown system kind {ctx.get('tag')!r}"
        fix = f"write {_kind_choices()} (a plug-in kind needs its package installed)"
    elif kind == "literal_error":
        problem, fix = msg, f"write one of {ctx.get('expected')}"
    elif kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        problem = f"{err.get('input')!r} is not an accepted name here"
        fix = f"write {PATTERN_HELP.get(pattern, 'a value matching ' + pattern)}"
    elif kind == "too_short":
        problem, fix = msg, "list at least one entry"
    elif kind == "value_error":
        problem, fix = msg, DOCS
    else:
        problem, fix = msg, f"write a value of the right type; {DOCS}"
    return Finding("error", None, None, None, problem, fix, _where(source, lines, path))


def _reject_credentials(
    data: Any, path: PathT, lines: dict[PathT, int], source: str, out: list[Finding]
) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            _reject_credentials(value, (*path, str(key)), lines, source, out)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _reject_credentials(value, (*path, index), lines, source, out)
    elif isinstance(data, str) and CREDENTIAL.search(data):
        out.append(Finding(
            "error", None, None, None, "this value looks like a URL with a password in it",
            "never write secrets in the data map: put the URL in an environment variable "
            "and name it with url_env", _where(source, lines, path),
        ))


# -- cross references ------------------------------------------------------------------------


def template_keys(template: str) -> set[str]:
    """Key names used in an S3 template such as ``uploads/{customer_id}/``."""
    try:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f}
    except ValueError:
        return set()


def used_keys(datamap: DataMap) -> Iterator[tuple[str, str, str | None, str]]:
    """Every key name a collection looks subjects up by: (key, system, collection, field)."""
    for system, kind in systems_of(datamap.systems):
        for key, collection, field in kind.lookups(system):
            yield key, system.name, collection, field


def provided_keys(datamap: DataMap) -> set[str]:
    """Every key name some system of the map can provide to others."""
    return {key for system, kind in systems_of(datamap.systems) for key in kind.provided(system)}


def cross_reference(datamap: DataMap, where: Any = dotted_path) -> list[Finding]:
    """Errors for dangling names inside the map, warnings for keys nobody provides."""
    out: list[Finding] = []
    for si, system in enumerate(datamap.systems):
        out += kind_of(system).cross_reference(system, si, where)
    provided = provided_keys(datamap)
    for key, system_name, collection, field in sorted(set(used_keys(datamap)),
                                                      key=lambda k: (k[0], k[1], k[2] or "")):
        if key not in REQUEST_IDENTITIES and key not in provided:
            out.append(Finding(
                "warning", system_name, collection, None,
                f"key {key!r} ({field}) is neither a request identity nor provided by any "
                "collection, so it is only known when a request gives --id "
                f"{key}=…",
                f"add 'provides: {{{key}: <column>}}' to the table that holds it",
            ))
    return out


def sql_cross_reference(system: SqlSystem, si: int, where: Any = dotted_path) -> list[Finding]:
    """Dangling names inside SQL system number ``si``: references and ``erase_after`` to
    unknown tables, reference columns the target does not list, unlisted masked columns."""
    out: list[Finding] = []
    names = {t.name: t for t in system.tables}
    for ti, table in enumerate(system.tables):
        base: PathT = ("systems", si, "tables", ti)

        def err(path: PathT, problem: str, fix: str, column: str | None = None,
                _s: str = system.name, _t: str = table.name, _b: PathT = base) -> None:
            out.append(Finding("error", _s, _t, column, problem, fix, where((*_b, *path))))

        for ri, ref in enumerate(table.references):
            target = names.get(ref.table)
            if target is None:
                close = difflib.get_close_matches(ref.table, list(names), n=1)
                err(("references", ri, "table"), f"references unknown table {ref.table!r}",
                    f"did you mean {close[0]!r}?" if close
                    else "add that table to this system's tables, or remove the reference")
                continue
            missing = [c for c in ref.to if c not in target.known_columns()]
            if missing:
                err(("references", ri, "to"),
                    f"reference to {ref.table} names columns {missing} the map does not "
                    f"list for {ref.table}",
                    f"list them on {ref.table} (primary_key or columns), or fix the names")
        for ei, after in enumerate(table.erase_after):
            if after not in names:
                err(("erase_after", ei), f"erase_after names unknown table {after!r}",
                    "name a table of the same system")
        for column in table.erasure.mask:
            if column not in table.columns:
                err(("erasure", "mask", column), f"masked column {column!r} is not listed "
                    "under columns", f"add '{column}: {{category: …}}' under columns",
                    column)
    return out
