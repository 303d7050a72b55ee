"""The dashboard and a record page in headless Chromium (Debian's ``chromium``), offline:
screenshots at desktop width and at 390 px go to ``test-artifacts/`` (git-ignored) for a person
to look at, and neither page scrolls sideways on a 390 or 320 px wide phone.

Chromium is required: without it these tests fail with the command to install it, they never
skip (see tests/dsar/bundles/test_bundle_report_browser.py).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_records_cli import root
from test_records_record_setup import complete_request, make_app
from test_records_report import _scenario

from dsar.app import App
from tests.dsar.bundles.test_bundle_report_browser import FLAGS, chromium

pytestmark = pytest.mark.usefixtures("chromium")  # marks them `browser`

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
#: Written into a copy of the page (the page's own policy forbids scripts): the widths after
#: layout, and the first elements wider than the window, sent to the frame around it.
MEASURE = """<script>addEventListener("load", () => {
  const w = innerWidth, wide = [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > w + 0.5)
    .slice(0, 8).map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : ""));
  parent.postMessage(JSON.stringify({scroll: document.documentElement.scrollWidth,
                                     inner: w, wide: wide}), "*");
});</script>"""
#: Headless Chromium lays a window out at least 500 px wide: the page is measured in a frame
#: of the phone's width instead.
FRAME = """<!doctype html><html><body style="margin:0"><pre id="measured"></pre>
<iframe src="{src}" style="border:0;width:{width}px;height:2000px"></iframe>
<script>addEventListener("message", e => {{
  document.getElementById("measured").textContent = e.data; }});</script></body></html>"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The dashboard (``dsar report --html``) and an erasure's record page (``dsar record
    --html``) of one state database, as the CLI writes them."""
    tmp_path = tmp_path_factory.mktemp("browser")
    for app in make_app("sqlite", tmp_path):
        _scenario(app)
        request_id = complete_request(app, pause_first=True)
        yield {"dashboard": _write(app, tmp_path, "report", "--html"),
               "record": _write(app, tmp_path, "record", request_id, "--html")}


def _write(app: App, tmp_path: Path, *args: str) -> Path:
    out = tmp_path / f"{args[0]}.html"
    env = {"DSAR_DATA_DIR": str(app.settings.data_dir), "DSAR_DATABASE_URL": app.db.url,
           "DSAR_LEDGER_ORIGIN": app.settings.ledger_origin, "DSAR_TIMEZONE": "Europe/Berlin"}
    result = CliRunner().invoke(root, [*args, "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    return out


def browse(page: Path, width: int, *args: str) -> subprocess.CompletedProcess[str]:
    profile = page.parent / f"chromium-profile-{width}"
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},2400",
         "--hide-scrollbars", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)


def measured(page: Path, width: int) -> dict[str, object]:
    """Load a copy of ``page`` with :data:`MEASURE` at ``width`` and read the widths back."""
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text())
    copy = page.with_name(f"{page.stem}-measure.html")
    copy.write_text(text.replace("</body>", MEASURE + "</body>"))
    frame = page.with_name(f"{page.stem}-frame-{width}.html")
    frame.write_text(FRAME.format(src=copy.name, width=width))
    done = browse(frame, 1280, "--dump-dom", "--virtual-time-budget=5000")
    found = re.search(r'<pre id="measured">(.+?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.parametrize("name", ["dashboard", "record"])
@pytest.mark.parametrize("width", [390, 320])
def test_page_does_not_scroll_sideways_on_a_phone(pages: dict[str, Path], name: str,
                                                  width: int) -> None:
    got = measured(pages[name], width)
    assert got["inner"] == width, got  # the window really is that narrow
    assert got["scroll"] <= got["inner"], f"{name} scrolls sideways at {width} px: {got}"


@pytest.mark.parametrize("name", ["dashboard", "record"])
def test_screenshots_at_desktop_and_390_px(pages: dict[str, Path], name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for label, width in (("desktop", 1280), ("390px", 390)):
        shot = ARTIFACTS / f"{name}-{label}.png"
        shot.unlink(missing_ok=True)
        done = browse(pages[name], width, f"--screenshot={shot}")
        assert shot.exists(), done.stderr[-2000:]
        png = shot.read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
        assert int.from_bytes(png[16:20], "big") == width  # the PNG's width


def test_the_measure_sees_a_page_that_scrolls_sideways(tmp_path: Path) -> None:
    page = tmp_path / "wide.html"
    page.write_text('<!doctype html><html><body><table><tr><td style="white-space:nowrap">'
                    + "x" * 200 + "</td></tr></table></body></html>")
    got = measured(page, 390)
    assert got["inner"] == 390 and got["scroll"] > 390 and "td" in got["wide"], got
