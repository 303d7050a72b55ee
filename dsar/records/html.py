"""A completion record as one self-contained HTML page for a reviewer.

The page shows what the record says (request, deadline, outcome per system, evidence root) and
the result of verifying the bundle with the key it carries. It loads nothing from the network:
styles are inline, there are no scripts, and every value is HTML-escaped by Jinja2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from dsar.records import glance
from dsar.records.charts import BAD, GOOD, PALETTE, WARN, Series, bar_chart, hbar_chart, legend
from dsar.records.verify import CHECKS, Verification, verify_bundle

__all__ = ["dashboard_charts", "render_dashboard_html", "render_record_html"]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

_env = Environment(loader=FileSystemLoader(TEMPLATES),
                   autoescape=select_autoescape(["html", "j2"]))


def _predicate(bundle: dict[str, Any]) -> dict[str, Any]:
    return glance.predicate_of(bundle.get("envelope"))


def render_record_html(bundle: dict[str, Any], verification: Verification | None = None,
                       facts: dict[str, Any] | None = None) -> str:
    """The reviewer page for ``bundle``; verifies it with its own key unless a
    ``verification`` is given. The page says which key was trusted. ``facts`` (see
    :func:`dsar.records.glance.request_facts`) adds how identity was verified and when the
    export was first downloaded; times are shown in the record's time zone."""
    result = verification or verify_bundle(bundle)
    p = _predicate(bundle)
    tz = p.get("rule", {}).get("timezone") or "UTC"
    kind = p.get("request", {}).get("kind", "")
    passed = sum(1 for c in result.checks if c.ok)
    anchored = any(c.name == "public-key" and c.ok and not c.detail.startswith("the bundle's own")
                   for c in result.checks)
    return _env.get_template("record.html.j2").render(
        bundle=bundle, p=p, result=result, descriptions=CHECKS, tz=tz, facts=facts or {},
        local=lambda value: glance.local(value, tz), columns=glance.columns_for(kind),
        notes=glance.collection_notes, summary=glance.summary_sentence(p),
        passed=passed, anchored=anchored,
        envelope_json=json.dumps(bundle.get("envelope"), indent=2, ensure_ascii=False),
    )


def _weekly(chart_id: str, title: str, weeks: dict[str, dict[str, int]]) -> dict[str, Any]:
    names = sorted({name for counts in weeks.values() for name in counts})
    series = [Series(name, [weeks[w].get(name, 0) for w in weeks], PALETTE[i % len(PALETTE)])
              for i, name in enumerate(names)]
    return {"svg": bar_chart(chart_id, title, list(weeks), series), "legend": legend(series)}


def dashboard_charts(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The dashboard's charts (``{"svg", "legend"}`` each) from :func:`build_dashboard`'s data."""
    months = data["on_time_by_month"]
    share = [Series("on time", [round(m["share"] * 100, 1) for m in months], GOOD)]
    bins = data["completion_days"]
    days = [Series("on time", [b["on_time"] for b in bins], GOOD),
            Series("late", [b["late"] for b in bins], BAD)]
    left = data["open"]["bins"]
    left_colours = [BAD, BAD, WARN, WARN, PALETTE[0], PALETTE[0]]
    systems = data["systems"]
    outcome = [Series(name, [s[name] for s in systems], PALETTE[i])
               for i, name in enumerate(("found", "deleted", "masked", "retained"))]
    why = data["reasons"]
    return {
        "by_kind": _weekly("weekly-kind", "Requests per week by kind", data["weekly_by_kind"]),
        "by_channel": _weekly("weekly-channel", "Requests per week by channel",
                              data["weekly_by_channel"]),
        "on_time": {"svg": bar_chart("on-time", "On-time share per month", [
            m["month"] for m in months], share, percent=True, reference=(100, "deadline")),
            "legend": legend(share)},
        "days": {"svg": bar_chart("days", "Days to complete", [b["bin"] for b in bins], days),
                 "legend": legend(days)},
        "open": {"svg": hbar_chart("open", "Open requests by days left", [
            (b["bin"], b["requests"], left_colours[i]) for i, b in enumerate(left)]),
            "legend": ""},
        "systems": {"svg": bar_chart("systems", "Outcomes per system", [
            s["system"] for s in systems], outcome, stacked=False), "legend": legend(outcome)},
        "extensions": {"svg": hbar_chart("extensions", "Extensions by reason", [
            (x["reason"], x["requests"], WARN) for x in why["extensions"]]), "legend": ""},
        "refusals": {"svg": hbar_chart("refusals", "Refusals by reason", [
            (x["reason"], x["requests"], BAD) for x in why["refusals"]]), "legend": ""},
    }


def render_dashboard_html(data: dict[str, Any], *, controller: str = "") -> str:
    """The reviewer dashboard for :func:`dsar.records.reviewer_report.build_dashboard`'s
    ``data``: one self-contained page, charts as inline SVG, no scripts, readable printed and on
    a phone."""
    return _env.get_template("dashboard.html.j2").render(
        d=data, s=data["summary"], charts=dashboard_charts(data), controller=controller)
