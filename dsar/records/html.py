"""A completion record as one self-contained HTML page for a reviewer.

The page shows what the record says (request, deadline, outcome per system, evidence root) and
the result of verifying the bundle with the key it carries. It loads nothing from the network:
styles are inline, there are no scripts, and every value is HTML-escaped by Jinja2.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from dsar.records.verify import CHECKS, Verification, verify_bundle

__all__ = ["render_record_html"]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

_env = Environment(loader=FileSystemLoader(TEMPLATES),
                   autoescape=select_autoescape(["html", "j2"]))


def _predicate(bundle: dict[str, Any]) -> dict[str, Any]:
    try:
        statement = json.loads(base64.b64decode(bundle["envelope"]["payload"]))
        return dict(statement["predicate"])
    except (KeyError, TypeError, ValueError):
        return {}


def render_record_html(bundle: dict[str, Any], verification: Verification | None = None) -> str:
    """The reviewer page for ``bundle``; verifies it with its own key unless a
    ``verification`` is given. The page says which key was trusted."""
    result = verification or verify_bundle(bundle)
    return _env.get_template("record.html.j2").render(
        bundle=bundle, p=_predicate(bundle), result=result, descriptions=CHECKS,
        envelope_json=json.dumps(bundle.get("envelope"), indent=2, ensure_ascii=False),
    )
