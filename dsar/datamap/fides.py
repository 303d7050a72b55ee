"""Import a Fides (fideslang) dataset file as a dsar data map, construct by construct.

A fideslang file holds ``dataset:`` entries (one per database, keyed by ``fides_key``), each
with ``collections`` of ``fields``. Per field, ``fides_meta`` (older files: ``fidesops_meta``)
may say ``identity``, ``primary_key``, ``data_type``, ``length``, ``read_only``,
``masking_strategy_override`` and ``references: [{dataset, field: "collection.field",
direction}]``; a field may hold nested ``fields``. Per collection, ``fides_meta`` may carry
``after``, ``erase_after``, ``skip_processing`` and ``masking_strategy_override``.

The translation (the table in docs/datamap.md is the user-facing version):

- each dataset becomes a ``kind: sql`` system reading its URL from ``url_env`` (with several
  datasets, ``<url_env>_<DATASET>``); ``skip_processing`` collections are left out;
- every ``identity`` field of a collection is an identity column: ``email`` -> ``email``,
  ``phone_number`` -> ``phone``, other identity types keep their name as the key; two fields of
  one identity type give the key a list of columns;
- references: ``direction: from`` -> ``inbound``, ``to`` -> ``outbound``; none given -> the way
  Fides' traversal takes it (away from the end identities reach first), or ``none`` where both
  ends are reached anyway; both noted. A reference into another dataset becomes a shared key
  (one side ``provides`` it, the other looks subjects up by it);
- erasure as Fides runs it: the fields whose data categories the erasure policy targets
  (``targets``, default ``user``: every ``user.*`` category) are masked, never the primary key
  nor ``read_only`` fields, with ``null`` unless the field's ``masking_strategy_override`` names
  another strategy; identity fields are always masked (else the person stays findable);
  ``masking_strategy_override: {strategy: delete}`` on the collection -> ``delete``; a
  collection with nothing targeted -> ``none`` (walked and collected, never changed);
- nested fields map to their top-level column, masked as a whole.

Whatever has no equivalent becomes a ``# note:`` line at the top of the output; the loader
reports each such line as a warning, so ``dsar datamap check`` shows it until it is deleted.
The output always loads; a malformed Fides file raises :class:`DataMapError` naming
``file:line``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from dsar.datamap.fides_refs import (
    COLUMN,
    FidesImport,
    fides_meta,
    key_name,
    link_references,
    listed,
    orient,
)
from dsar.datamap.fides_yaml import dump_compact, load_with_lines
from dsar.datamap.loader import parse_datamap
from dsar.datamap.schema import DataMap
from dsar.errors import DataMapError

IDENTITY_KEYS = {"email": "email", "phone_number": "phone", "phone": "phone"}
IDENTITY_CATEGORY = {"email": "user.contact.email", "phone": "user.contact.phone_number"}
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
STRATEGIES = {"null_rewrite": "null", "string_rewrite": "fixed", "hash": "hash",
              "hmac": "hash", "random_string_rewrite": "random", "aes_encrypt": "hash"}
TEXT_TYPES = ("string", "object_id", None)
DEFAULT_TARGETS = ("user",)


def import_fides(text: str, url_env: str, source_name: str = "<fides>",
                 targets: Iterable[str] = DEFAULT_TARGETS) -> str:
    """The dsar data map YAML for fideslang ``text`` (validated; notes as comments).

    ``targets``: the data categories the Fides erasure policy targets (a category covers its
    sub-categories). Raises DataMapError for a malformed file, naming ``file:line``."""
    if not ENV_NAME.match(url_env):
        raise DataMapError(f"--url-env {url_env!r} is not an environment variable name",
                           "write the variable's name in capitals, e.g. SHOP_DB_URL")
    doc, lines = load_with_lines(text, source_name)
    ctx = FidesImport(source_name, lines, tuple(t.strip() for t in targets if t.strip())
                  or DEFAULT_TARGETS)
    datasets = doc.get("dataset") if isinstance(doc, dict) else None
    if not isinstance(datasets, list) or not datasets:
        raise ctx.fail(doc, "no 'dataset:' list found",
                       "give a fideslang dataset file (dataset: - fides_key: …)")
    systems: dict[str, dict[str, Any]] = {}
    for dataset in datasets:
        if not isinstance(dataset, dict) or not isinstance(dataset.get("fides_key"), str):
            raise ctx.fail(dataset if isinstance(dataset, dict) else datasets,
                           "a dataset has no fides_key", "add 'fides_key: <name>' to it")
        key = dataset["fides_key"]
        name = _system_name(key)
        if name in systems:
            raise ctx.fail(dataset, f"dataset {key!r} becomes system {name!r} a second time",
                           "give each dataset a distinct fides_key")
        env = url_env if len(datasets) == 1 else f"{url_env}_{key.upper()}"
        systems[name] = {"name": name, "kind": "sql",
                         "url_env": re.sub(r"[^A-Z0-9_]", "_", env.upper()),
                         "tables": _dataset(ctx, key, dataset)}
    for dataset in datasets:
        for coll in dataset.get("collections") or []:
            if (dataset["fides_key"], coll["name"]) in ctx.tables:
                link_references(ctx, dataset["fides_key"], coll)
    orient(ctx)
    for (key, name), entry in ctx.tables.items():
        for after in [a for a in entry["erase_after"] if (key, a) not in ctx.tables]:
            ctx.notes.append(f"{key}.{name}: erase_after {key}.{after} dropped (not an "
                             "imported collection)")
        entry["erase_after"] = list(dict.fromkeys(
            a for a in entry["erase_after"] if (key, a) in ctx.tables and a != name))
    kept = []
    for system in systems.values():
        if not system["tables"]:
            ctx.notes.append(f"{system['name']}: no collection to import; system left out")
            continue
        system["tables"] = [_finish(entry) for entry in system["tables"]]
        kept.append(system)
    if not kept:
        raise ctx.fail(doc, "no collection to import (every dataset is empty or skipped)",
                       "give collections with fields")
    body = dump_compact({"version": 1, "systems": kept})
    header = [f"# Imported from the Fides dataset file {_one_line(source_name)}.",
              "# review: every table's erasure, and each note below; `dsar datamap check`",
              "# warns about every '# note:' line until you delete it.",
              *[f"# note: {_one_line(n)}" for n in dict.fromkeys(ctx.notes)]]
    result = "\n".join(header) + "\n" + body
    parse_datamap(result, f"{source_name} (imported)")
    return result


def import_fides_map(text: str, url_env: str, source_name: str = "<fides>",
                     targets: Iterable[str] = DEFAULT_TARGETS) -> DataMap:
    """Like :func:`import_fides`, as a validated :class:`DataMap`."""
    return parse_datamap(import_fides(text, url_env, source_name, targets), source_name)


# -- datasets, collections, fields -------------------------------------------------------------


def _one_line(text: str) -> str:
    """``text`` fit for a comment line: names from the file never break out of it."""
    return " ".join(text.split())


def _system_name(key: str) -> str:
    name = re.sub(r"[^a-z0-9_-]", "_", key.lower())
    return name if name[:1].isalpha() else f"d_{name}"


def _dataset(ctx: FidesImport, key: str, dataset: dict[str, Any]) -> list[dict[str, Any]]:
    meta = fides_meta(ctx, dataset)
    if meta.get("after"):
        ctx.notes.append(f"{key}: dataset 'after' dropped (dsar orders systems by keys)")
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), dict) else {}
    schema = namespace.get("schema")
    if set(namespace) - {"schema"}:
        ctx.notes.append(f"{key}: namespace {sorted(set(namespace) - {'schema'})} not "
                         "imported; the URL in the environment names the database")
    inherited = _categories(ctx, dataset, key, [])
    entries = []
    for coll in listed(ctx, dataset, "collections", f"dataset {key}"):
        if not isinstance(coll, dict) or not isinstance(coll.get("name"), str):
            raise ctx.fail(coll if isinstance(coll, dict) else dataset,
                           f"a collection of dataset {key} has no name", "add 'name: <table>'")
        if (key, coll["name"]) in ctx.tables:
            raise ctx.fail(coll, f"collection {coll['name']!r} is listed twice in {key}",
                           "list each collection once")
        if fides_meta(ctx, coll).get("skip_processing"):
            ctx.notes.append(f"{key}.{coll['name']}: skip_processing: left out of the map "
                             "(never searched nor erased)")
            continue
        entry = _collection(ctx, key, coll, inherited)
        if schema:
            entry["schema"] = str(schema)
        ctx.tables[(key, coll["name"])] = entry
        entries.append(entry)
    return entries


def _categories(ctx: FidesImport, node: dict[str, Any], where: str, inherited: list[str]
                ) -> list[str]:
    found = [str(c) for c in listed(ctx, node, "data_categories", where)]
    return found or inherited


def _collection(ctx: FidesImport, dataset: str, coll: dict[str, Any], inherited: list[str]
                ) -> dict[str, Any]:
    name, meta = coll["name"], fides_meta(ctx, coll)
    where = f"{dataset}.{name}"
    entry: dict[str, Any] = {"name": name, "primary_key": [], "identities": {}, "provides": {},
                             "references": [], "columns": {}, "erase_after": [], "mask": {}}
    categories = _categories(ctx, coll, where, inherited)
    for key in ("redact", "partitioning"):
        if meta.get(key):
            ctx.notes.append(f"{where}: '{key}' has no dsar equivalent; dropped")
    for after in listed(ctx, meta, "after", where):
        ctx.notes.append(f"{where}: 'after: {after}' dropped (dsar orders queries by "
                         "references)")
    for after in listed(ctx, meta, "erase_after", where):
        ds, _, other = str(after).partition(".")
        if not other:
            raise ctx.fail(meta, f"erase_after entry {after!r} of {where} is not "
                           "'dataset.collection'", "write it as <fides_key>.<collection>")
        if ds == dataset:
            entry["erase_after"].append(other)
        else:
            ctx.notes.append(f"{where}: erase_after {after} is in another dataset; dsar "
                             "orders across systems by keys")
    seen: set[str] = set()
    for fld in listed(ctx, coll, "fields", where):
        _field(ctx, where, entry, fld, categories)
        if fld["name"] in seen:
            raise ctx.fail(fld, f"field {fld['name']!r} is listed twice in {where}",
                           "list each field once")
        seen.add(fld["name"])
    override = meta.get("masking_strategy_override")
    strategy = override.get("strategy") if isinstance(override, dict) else override
    if strategy == "delete":
        entry["erasure"] = {"action": "delete"}
    elif entry["mask"]:
        entry["erasure"] = {"action": "mask", "mask": entry["mask"]}
    else:
        entry["erasure"] = {"action": "none"}
    if strategy not in (None, "delete"):
        ctx.notes.append(f"{where}: collection masking_strategy_override {strategy!r} unknown "
                         "(Fides knows only 'delete'); fields masked instead")
    if not entry["primary_key"] and entry["erasure"]["action"] != "none":
        ctx.notes.append(f"{where}: no primary_key field; declare primary_key (dsar erases "
                         "and proves rows by their key)")
    return entry


def _field(ctx: FidesImport, where: str, entry: dict[str, Any], fld: Any,
           inherited: list[str]) -> None:
    if not isinstance(fld, dict) or not isinstance(fld.get("name"), str):
        raise ctx.fail(fld if isinstance(fld, dict) else entry, f"a field of {where} has no "
                       "name", "add 'name: <column>'")
    name, meta = fld["name"], fides_meta(ctx, fld)
    here = f"{where}.{name}"
    if not COLUMN.match(name):
        ctx.notes.append(f"{here}: not a plain column name; field not imported")
        return
    categories = _categories(ctx, fld, here, inherited)
    nested = listed(ctx, fld, "fields", here)
    if nested:
        categories = list(dict.fromkeys([*categories, *_nested_categories(ctx, here, nested)]))
        ctx.notes.append(f"{here}: nested fields map to the whole column {name} (dsar masks "
                         "whole columns)")
    for key in ("return_all_elements", "custom_request_field", "redact"):
        if meta.get(key):
            ctx.notes.append(f"{here}: '{key}' has no dsar equivalent; dropped")
    identity = meta.get("identity")
    if identity is not None and not isinstance(identity, str):
        raise ctx.fail(meta, f"identity of {here} is not a text", "write e.g. identity: email")
    key = IDENTITY_KEYS.get(identity, key_name(identity)) if identity else None
    if key:
        entry["identities"].setdefault(key, []).append(name)
    if meta.get("primary_key"):
        entry["primary_key"].append(name)
    user = [c for c in categories if c.startswith("user.") or ctx.targeted([c])]
    if user or key:
        entry["columns"][name] = {"category": next(
            (c for c in user if ctx.targeted([c])), user[0] if user else
            IDENTITY_CATEGORY.get(key or "", "user.unique_id"))}
    if meta.get("primary_key") and key and ctx.targeted(categories):
        ctx.notes.append(f"{here}: identity in the primary key, which masking keeps; to erase "
                         "the person, set the collection's masking_strategy_override to delete")
    if meta.get("primary_key") or not (key or ctx.targeted(categories)):
        return
    if meta.get("read_only"):
        ctx.notes.append(f"{here}: read_only, so erasure leaves it" + (
            "; the person stays findable by it" if key else ""))
        return
    if key and not ctx.targeted(categories):
        ctx.notes.append(f"{here}: identity field outside the erasure targets; masked anyway so "
                         "that an erased person is not found again")
    entry["mask"][name] = _mask_rule(ctx, here, meta, nested)


def _nested_categories(ctx: FidesImport, where: str, fields: list[Any]) -> list[str]:
    out: list[str] = []
    for sub in fields:
        if not isinstance(sub, dict) or not isinstance(sub.get("name"), str):
            raise ctx.fail(sub if isinstance(sub, dict) else fields, f"a nested field of "
                           f"{where} has no name", "add 'name: <field>'")
        here, meta = f"{where}.{sub['name']}", fides_meta(ctx, sub)
        if meta.get("identity") or meta.get("references"):
            ctx.notes.append(f"{here}: identity or reference inside a nested field dropped "
                             "(dsar looks subjects up by whole columns)")
        out += _categories(ctx, sub, here, [])
        out += _nested_categories(ctx, here, listed(ctx, sub, "fields", here))
    return out


def _mask_rule(ctx: FidesImport, here: str, meta: dict[str, Any], nested: list[Any]
               ) -> dict[str, Any]:
    override = meta.get("masking_strategy_override")
    if override is None or nested:
        return {"strategy": "null"}
    if not isinstance(override, dict) or not isinstance(override.get("strategy"), str):
        raise ctx.fail(meta, f"masking_strategy_override of {here} has no strategy",
                       "write masking_strategy_override: {strategy: null_rewrite}")
    fides, config = override["strategy"], override.get("configuration") or {}
    strategy = STRATEGIES.get(fides)
    if strategy is None:
        ctx.notes.append(f"{here}: masking strategy {fides!r} unknown to dsar; masked with null")
        return {"strategy": "null"}
    if fides == "aes_encrypt":
        ctx.notes.append(f"{here}: aes_encrypt (reversible) imported as hash (irreversible)")
    data_type = str(meta["data_type"]).split("[")[0] if meta.get("data_type") else None
    if strategy == "hash" and data_type not in TEXT_TYPES:
        ctx.notes.append(f"{here}: a hash is text, the field is {data_type}; masked with random")
        return {"strategy": "random"}
    if strategy != "fixed":
        return {"strategy": strategy}
    value = config.get("rewrite_value") if isinstance(config, dict) else None
    if value is None:
        ctx.notes.append(f"{here}: string_rewrite without rewrite_value; masked with null")
        return {"strategy": "null"}
    if isinstance(value, str) and data_type not in TEXT_TYPES:
        ctx.notes.append(f"{here}: rewrite_value {value!r} does not fit data_type {data_type}; "
                         "masked with random")
        return {"strategy": "random"}
    length = meta.get("length")
    if isinstance(value, str) and isinstance(length, int) and len(value) > length > 0:
        ctx.notes.append(f"{here}: rewrite_value cut to the field's length {length}")
        value = value[:length]
    return {"strategy": "fixed", "value": value}


def _finish(entry: dict[str, Any]) -> dict[str, Any]:
    """The table entry as written: empty parts left out, one-column identities as text."""
    idents = {k: list(dict.fromkeys(c)) for k, c in entry["identities"].items()}
    out: dict[str, Any] = {"name": entry["name"]}
    if entry.get("schema"):
        out["schema"] = entry["schema"]
    parts = {"primary_key": entry["primary_key"],
             "identities": {k: c[0] if len(c) == 1 else c for k, c in idents.items()},
             "provides": entry["provides"], "references": entry["references"],
             "columns": entry["columns"], "erase_after": entry["erase_after"]}
    out.update({k: v for k, v in parts.items() if v})
    out["erasure"] = entry["erasure"]
    return out
