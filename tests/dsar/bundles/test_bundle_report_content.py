"""report.html reads like a letter: labels, money, dates in the bundle's zone, nested values,
Art. 15(1)(h) and 15(2), in English, German and French; data.json follows its JSON Schema."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
from hypothesis import given
from hypothesis import strategies as st

from dsar.bundles import BundleMeta, RowsBatch, build_bundle, issue_link, open_download
from dsar.bundles.cells import MAX_ITEMS, CellFormat
from dsar.bundles.report_html import SCHEMA
from tests.dsar.bundles.conftest import customer_rows, invoice_rows

REPO = Path(__file__).resolve().parents[3]


def _bundle(datamap, store, key, secret, now, items, **meta) -> zipfile.ZipFile:
    info = build_bundle(BundleMeta("r", timezone="Europe/Berlin", **meta), datamap,
                        lambda: items, store, key, now)
    token = issue_link(info.bundle_id, info.expires_at, secret)
    body = b"".join(open_download(token, store=store, key=key, secret=secret, now=now).chunks)
    return zipfile.ZipFile(io.BytesIO(body))


def _items():
    return [RowsBatch("crm", "customer", customer_rows()),
            RowsBatch("crm", "invoice", invoice_rows(3))]


def test_labels_money_dates_and_nested_values(datamap, local_store, key, secret, now):
    page = _bundle(datamap, local_store, key, secret, now, _items()).read("report.html").decode()
    assert '<th scope="col">Amount<br><code>total</code></th>' in page
    assert '<th scope="col">Created at<br><code>created_at</code></th>' in page  # no map label
    assert '<td class="num">€0.25</td>' in page
    # 05:06 UTC is 06:06 in Berlin; the page says which zone
    assert "Mar 4, 2023, 6:06:07" in page
    assert "shown in the Europe/Berlin time zone" in page
    assert "February 28, 1990" in page
    assert '<dl class="nest"><div><dt>lang</dt><dd>fr</dd></div>' in page
    assert '{"lang"' not in page and "&#34;lang&#34;" not in page  # never raw JSON
    assert "binary data (8 bytes)" in page
    assert "Automated decisions" in page and "Transfers outside the EU" in page


def test_data_json_follows_the_published_schema(datamap, local_store, key, secret, now):
    archive = _bundle(datamap, local_store, key, secret, now, _items(),
                      searched=(("media", "avatars"),))
    schema = json.loads(archive.read("data.schema.json"))
    assert schema == json.loads((REPO / "docs" / "data-json.schema.json").read_text())
    assert schema == json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(archive.read("data.json")), schema,
                        format_checker=jsonschema.FormatChecker())
    assert "data.schema.json" in json.loads(archive.read("manifest.json"))["files"][1]["path"] \
        or any(f["path"] == "data.schema.json"
               for f in json.loads(archive.read("manifest.json"))["files"])
    broken = json.loads(archive.read("data.json"))
    broken["collections"][0]["types"]["id"] = "integer"
    try:
        jsonschema.validate(broken, schema)
    except jsonschema.ValidationError:
        pass
    else:  # pragma: no cover
        raise AssertionError("an unknown column type passed the schema")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=40) | st.dictionaries(st.text(max_size=20), inner,
                                                                  max_size=40),
    max_leaves=200)


@given(json_values)
def test_nested_values_are_escaped_and_bounded(value) -> None:
    cell = CellFormat(zone=ZoneInfo("Europe/Berlin")).cell("prefs", value)
    assert cell.startswith("<td") and cell.endswith("</td>")
    assert "<script" not in cell.lower()
    assert cell.count("<li>") + cell.count("<dt>") <= (MAX_ITEMS + 1) * 60
    assert cell.count('class="nest"') <= 1 + 40 * 4 * 40
