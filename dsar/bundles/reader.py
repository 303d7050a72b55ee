"""Reading a bundle back: the rows of data.json and the CSVs decoded to the original values,
and the manifest checked against the files. Used by the tests and by anyone verifying a bundle.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from typing import Any

from dsar.bundles import csvfmt
from dsar.bundles.values import decode


def load_data(archive: zipfile.ZipFile) -> dict[str, Any]:
    with archive.open("data.json") as handle:
        return json.load(handle)


def collection(data: dict[str, Any], system: str, name: str) -> dict[str, Any]:
    for coll in data["collections"]:
        if coll["system"] == system and coll["collection"] == name:
            return coll
    raise KeyError(f"{system}/{name} is not in data.json")


def json_rows(coll: dict[str, Any]) -> list[dict[str, Any]]:
    """A data.json collection's rows with every value decoded by its column type."""
    types = coll.get("types", {})
    return [{k: decode(v, types.get(k)) for k, v in row.items()} for row in coll["rows"]]


def csv_rows(archive: zipfile.ZipFile, coll: dict[str, Any]) -> tuple[list[str], list[dict]]:
    """The collection's CSV as ``(columns, rows)``, decoded with data.json's column types."""
    text = archive.read(coll["csv"]).decode("utf-8")
    return csvfmt.parse(text, coll.get("types", {}))


def check_manifest(archive: zipfile.ZipFile) -> list[str]:
    """Problems found comparing manifest.json with the members; empty when all is well."""
    manifest = json.loads(archive.read("manifest.json"))
    listed = {entry["path"]: entry for entry in manifest["files"]}
    problems = []
    members = {info.filename for info in archive.infolist()} - {"manifest.json"}
    for name in sorted(members ^ set(listed)):
        problems.append(f"{name}: {'not in manifest' if name in members else 'missing from zip'}")
    for name in sorted(members & set(listed)):
        digest, size = hashlib.sha256(), 0
        with archive.open(name) as handle:
            while block := handle.read(1024 * 1024):
                digest.update(block)
                size += len(block)
        if digest.hexdigest() != listed[name]["sha256"] or size != listed[name]["size"]:
            problems.append(f"{name}: checksum or size differs from manifest")
    return problems
