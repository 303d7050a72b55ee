"""A retried erasure credits what an interrupted attempt already erased (workflows.task)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connectors.base import ConnectorResult
from dsar.evidence import CollectionEvidence
from workflows.task import _merge_precount


@given(before=st.integers(0, 500), now_found=st.integers(0, 500),
       action=st.sampled_from(["delete", "erase", "mask"]))
def test_rows_an_earlier_attempt_erased_are_credited_to_this_attempt(
        before: int, now_found: int, action: str) -> None:
    item = CollectionEvidence(system="s", collection="c", action=action, found=now_found)
    if action == "mask":
        item.masked = now_found
    else:
        item.deleted = now_found
    if action == "erase":
        item.counts["records_redacted"] = now_found
    merged = _merge_precount(ConnectorResult(evidence=[item]), {f"c|{action}": before})
    (out,) = merged.evidence
    earlier = max(before - now_found, 0)
    assert out.found == max(before, now_found)
    assert out.counts.get("erased_by_earlier_attempt", 0) == earlier
    erased = out.masked if action == "mask" else out.deleted
    assert erased == out.found  # nothing found is left unaccounted for
    if action == "erase":
        assert out.counts["records_redacted"] == out.deleted
