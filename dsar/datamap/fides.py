"""Import a Fides (fideslang) dataset file as a dsar data map.

A fideslang file holds ``dataset:`` entries (one per database, keyed by ``fides_key``), each
with ``collections`` of ``fields``. Per field, ``fides_meta`` (older files: ``fidesops_meta``)
may say ``identity`` (the request identity the field holds), ``primary_key``, ``data_type`` and
``references: [{dataset, field: "collection.field", direction}]``. Per collection,
``fides_meta`` may carry ``after``, ``erase_after`` and ``masking_strategy_override``.

How it maps:

- each dataset becomes a ``kind: sql`` system reading its URL from ``url_env`` (with several
  datasets, ``<url_env>_<DATASET>``);
- ``identity: email`` / ``phone_number`` -> ``identities: {email|phone: field}``; other identity
  types keep their name as the key;
- a reference on field F of collection C to D.G: ``direction: from`` (C's rows are found from
  D's G values) -> ``inbound``; ``direction: to`` (D's rows are found from C's F values) ->
  ``outbound``; no direction (Fides follows both ways) -> ``none`` with a review note. A
  reference to another dataset becomes a shared key: one side ``provides`` it, the other side
  looks subjects up by it;
- ``data_categories`` of fields -> ``columns`` with the first ``user.*`` category;
- ``masking_strategy_override: {strategy: delete}`` -> ``erasure: delete``; otherwise (Fides
  masks by default) ``mask`` with ``null`` for the personal, non-key fields;
- ``erase_after: [dataset.collection]`` -> ``erase_after``; ``after`` (query order) is not
  needed — dsar orders queries by references — and is noted.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from dsar.datamap.loader import parse_datamap
from dsar.datamap.schema import DataMap
from dsar.errors import DataMapError

IDENTITY_KEYS = {"email": "email", "phone_number": "phone", "phone": "phone"}


def _meta(node: dict[str, Any]) -> dict[str, Any]:
    meta = node.get("fides_meta") or node.get("fidesops_meta") or {}
    return meta if isinstance(meta, dict) else {}


def _key_name(collection: str, field: str) -> str:
    name = field if field.endswith("_id") else f"{collection}_{field}"
    return re.sub(r"[^a-z0-9_]", "_", name.lower()).strip("_") or "key"


def _system_name(key: str) -> str:
    name = re.sub(r"[^a-z0-9_-]", "_", key.lower())
    return name if name[:1].isalpha() else f"d_{name}"


def import_fides(text: str, url_env: str, source_name: str = "<fides>") -> str:
    """The dsar data map YAML for fideslang ``text`` (validated; notes as comments)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataMapError(f"{source_name}: not valid YAML ({exc})", "fix the file") from None
    datasets = doc.get("dataset") if isinstance(doc, dict) else None
    if not isinstance(datasets, list) or not datasets:
        raise DataMapError(f"{source_name}: no 'dataset:' list found",
                           "give a fideslang dataset file (dataset: - fides_key: …)")
    notes: list[str] = []
    tables: dict[tuple[str, str], dict[str, Any]] = {}
    systems: list[dict[str, Any]] = []
    for dataset in datasets:
        if not isinstance(dataset, dict) or not dataset.get("fides_key"):
            raise DataMapError(f"{source_name}: a dataset has no fides_key", "add one")
        key = str(dataset["fides_key"])
        env = url_env if len(datasets) == 1 else f"{url_env}_{key.upper().replace('-', '_')}"
        entries = []
        for coll in dataset.get("collections") or []:
            entry = _collection(key, coll, notes)
            tables[(key, entry["name"])] = entry
            entries.append(entry)
        systems.append({"name": _system_name(key), "kind": "sql", "url_env": env,
                        "tables": entries})
    for dataset in datasets:
        for coll in dataset.get("collections") or []:
            _references(str(dataset["fides_key"]), coll, tables, notes)
    for entry in tables.values():
        entry.pop("_fields", None)
        entry.update({k: v for k, v in (("references", entry.pop("references")),
                                         ("erase_after", entry.pop("erase_after"))) if v})
        entry["erasure"] = entry.pop("erasure")
        for empty in ("identities", "provides", "columns", "primary_key"):
            if not entry[empty]:
                del entry[empty]
    body = yaml.safe_dump({"version": 1, "systems": systems}, sort_keys=False, width=100)
    header = [f"# Imported from the Fides dataset file {source_name}.",
              "# review: every table's erasure, and the notes below.",
              *[f"# note: {n}" for n in dict.fromkeys(notes)]]
    result = "\n".join(header) + "\n" + body
    parse_datamap(result, f"{source_name} (imported)")
    return result


def import_fides_map(text: str, url_env: str, source_name: str = "<fides>") -> DataMap:
    """Like :func:`import_fides`, as a validated :class:`DataMap`."""
    return parse_datamap(import_fides(text, url_env, source_name), source_name)


def _collection(dataset: str, coll: Any, notes: list[str]) -> dict[str, Any]:
    if not isinstance(coll, dict) or not coll.get("name"):
        raise DataMapError(f"dataset {dataset}: a collection has no name", "add one")
    name = str(coll["name"])
    meta = _meta(coll)
    entry: dict[str, Any] = {"name": name, "primary_key": [], "identities": {}, "provides": {},
                             "references": [], "columns": {}, "erase_after": [],
                             "_fields": coll.get("fields") or []}
    personal: list[str] = []
    for field in entry["_fields"]:
        if not isinstance(field, dict) or "name" not in field:
            continue
        fname, fmeta = str(field["name"]), _meta(field)
        if field.get("fields"):
            notes.append(f"{dataset}.{name}.{fname}: nested fields are not imported")
            continue
        if fmeta.get("primary_key"):
            entry["primary_key"].append(fname)
        if fmeta.get("identity"):
            identity = str(fmeta["identity"])
            entry["identities"][IDENTITY_KEYS.get(identity, _key_name("", identity))] = fname
        user = [c for c in field.get("data_categories") or [] if str(c).startswith("user.")]
        if user:
            entry["columns"][fname] = {"category": str(user[0])}
            if not fmeta.get("primary_key"):
                personal.append(fname)
    for after in meta.get("after") or coll.get("after") or []:
        notes.append(f"{dataset}.{name}: 'after: {after}' dropped (dsar orders queries by "
                     "references)")
    for after in meta.get("erase_after") or []:
        ds, _, other = str(after).partition(".")
        if ds == dataset and other:
            entry["erase_after"].append(other)
        else:
            notes.append(f"{dataset}.{name}: erase_after {after} is in another dataset; "
                         "dsar orders across systems by keys")
    strategy = (meta.get("masking_strategy_override") or {}).get("strategy")
    if strategy == "delete":
        entry["erasure"] = {"action": "delete"}
    elif personal:
        entry["erasure"] = {"action": "mask",
                            "mask": {f: {"strategy": "null"} for f in personal}}
    else:
        entry["erasure"] = {"action": "delete"}
        notes.append(f"{dataset}.{name}: no personal fields; review its erasure (delete)")
    return entry


def _references(dataset: str, coll: dict[str, Any],
                tables: dict[tuple[str, str], dict[str, Any]], notes: list[str]) -> None:
    here = tables[(dataset, str(coll["name"]))]
    for field in coll.get("fields") or []:
        if not isinstance(field, dict):
            continue
        for ref in _meta(field).get("references") or []:
            target_ds = str(ref.get("dataset", dataset))
            target_coll, _, target_field = str(ref.get("field", "")).rpartition(".")
            target = tables.get((target_ds, target_coll))
            if target is None or not target_field:
                notes.append(f"{dataset}.{here['name']}.{field['name']}: reference to unknown "
                             f"{target_ds}.{ref.get('field')} dropped")
                continue
            direction = {"from": "inbound", "to": "outbound"}.get(ref.get("direction"), "none")
            if ref.get("direction") not in ("from", "to"):
                notes.append(f"{dataset}.{here['name']}.{field['name']}: reference without "
                             "direction imported as 'none'; choose inbound or outbound")
            if target_ds == dataset:
                here["references"].append({"columns": [str(field["name"])],
                                           "table": target_coll, "to": [target_field],
                                           "direction": direction})
                if target_field not in target["primary_key"]:
                    target["columns"].setdefault(target_field, {"category": "system.operations"})
                continue
            key = _key_name(target_coll, target_field)
            if direction == "inbound":
                target["provides"][key] = target_field
                here["identities"][key] = str(field["name"])
            elif direction == "outbound":
                here["provides"][key] = str(field["name"])
                target["identities"][key] = target_field
