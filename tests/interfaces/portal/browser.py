"""Helpers for the portal's browser tests: the portal under uvicorn on loopback, Playwright on
Debian's Chromium, axe-core from .browser-deps (infra/browser.sh), and the artefacts folder.

Missing pieces fail with the command that installs them; these tests never skip.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

REPO = Path(__file__).resolve().parents[3]
CHROMIUM = os.environ.get("DSAR_CHROMIUM", "/usr/bin/chromium")
AXE = REPO / ".browser-deps" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts" / "portal"
#: WCAG 2.0/2.1 A and AA rules, as the issue asks (axe's "best practice" rules are extra)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def require_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is needed at {CHROMIUM}; run: bash infra/browser.sh")
    if not AXE.exists():
        pytest.fail(f"axe-core is needed at {AXE.relative_to(REPO)}; run: bash infra/browser.sh")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("Playwright is needed: pip install -e '.[test]'")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(asgi: Any, port: int) -> Iterator[str]:
    """``asgi`` under uvicorn on loopback ``port``, in a thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the portal did not start under uvicorn")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Checker:
    """Runs the checks every page gets: axe-core (WCAG 2.1 A/AA, no violations), no sideways
    scrolling at 320 px, and screenshots at desktop width and at 390 px into ARTIFACTS."""

    def __init__(self, page: Any, label: str) -> None:
        self.page, self.label = page, label
        self.seen: list[str] = []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def check(self, name: str) -> None:
        page = self.page
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS)
        problems = [f"{v['id']}: {v['help']} ({len(v['nodes'])}x, e.g. "
                    f"{v['nodes'][0]['html'][:120]})" for v in result["violations"]]
        assert not problems, f"axe on {name} ({self.label}): {problems}"
        size = page.viewport_size
        page.screenshot(path=str(ARTIFACTS / f"{self.label}-{name}-desktop.png"), full_page=True)
        for width in (390, 320):
            page.set_viewport_size({"width": width, "height": 800})
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{name} ({self.label}) scrolls sideways at {width} px"
            if width == 390:
                page.screenshot(path=str(ARTIFACTS / f"{self.label}-{name}-390.png"),
                                full_page=True)
        page.set_viewport_size(size)
        self.seen.append(name)
