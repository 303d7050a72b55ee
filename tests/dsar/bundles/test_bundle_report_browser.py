"""report.html rendered by headless Chromium (Debian's ``chromium`` package), offline.

Chromium is required: without /usr/bin/chromium these tests fail with the command to install it
(``apt-get update && apt-get install -y chromium``), they never skip.
"""

from __future__ import annotations

import html.parser
import io
import itertools
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from dsar.bundles import BundleMeta, build_bundle, issue_link, open_download

pytestmark = pytest.mark.usefixtures("chromium")  # marks them `browser`

CHROMIUM = os.environ.get("DSAR_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def chromium() -> str:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(
            f"headless Chromium is needed to check report.html but {CHROMIUM} is missing; "
            "install it with: apt-get update && apt-get install -y chromium "
            "(or set DSAR_CHROMIUM to its path)"
        )
    return CHROMIUM


@pytest.fixture
def report(tmp_path, datamap, local_store, key, secret, now, sample_items) -> Path:
    meta = BundleMeta("req-report", timezone="Europe/Paris", preview_rows=10)
    info = build_bundle(meta, datamap, lambda: sample_items(invoices=45), local_store, key, now)
    token = issue_link(info.bundle_id, info.expires_at, secret)
    body = b"".join(open_download(token, store=local_store, key=key, secret=secret,
                                  now=now).chunks)
    path = tmp_path / "bundle" / "report.html"
    path.parent.mkdir()
    path.write_bytes(zipfile.ZipFile(io.BytesIO(body)).read("report.html"))
    return path


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def visible_text(dom: str) -> str:
    body = re.sub(r"(?s)<(style|head)\b.*?</\1>", " ", dom)
    text = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", html.unescape(text))


def test_bundle_report_renders_in_chromium(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = run([f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri()], tmp_path)
    assert shot.exists(), done.stderr[-2000:]
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000

    done = run(["--dump-dom", report.as_uri()], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    text = visible_text(done.stdout)
    expected = [
        "A copy of your personal data", "Acme Books Ltd",
        "Made", "2024-05-01 14:00 CEST (UTC+02:00)",
        "Download link works until", "2024-05-31 14:00 CEST (UTC+02:00)",
        "Customer database", "Your customer profile", "Email address", "Phone number",
        "First name", "Fashion: Shoe size", "zoë.ångström@example.org", "日本語@example.jp",
        "Running your account; Billing", "Art. 6(1)(b) GDPR – contract",
        "Payment processor Stripe", "6 years after the last order", "You, when you signed up",
        "Invoice", "Art. 6(1)(c) legal obligation", "10 years",
        "This table has 45 records; the first 10 are shown", "csv/crm/invoice.csv",
        "Profile pictures", "avatars/42/me.png", "../../../etc/passwd",
        "files/media/avatars/etc/passwd", "Photos and media",
        "Your rights", "Correct your data", "Have your data erased", "Restrict processing",
        "Take your data elsewhere", "Withdraw consent",
        "privacy@acme.example", "dpo@acme.example",
        "How to complain", "Commission nationale de l'informatique et des libertés",
        "https://www.cnil.fr/en/complaints",
    ]
    missing = [item for item in expected if item not in text]
    assert not missing, f"not in the rendered page: {missing}"
    assert "Object to processing" not in text  # no legitimate-interest or public-task basis


class _Audit(html.parser.HTMLParser):
    """Collects what a static accessibility and self-containment check needs."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_bundle_report_structure_is_accessible_and_offline(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    audit = _Audit()
    audit.feed(page)
    tags = [t for t, _ in audit.tags]
    assert audit.tags[0] == ("html", {"lang": "en"})
    assert tags.count("h1") == 1 and "main" in tags and "title" in tags
    levels = [int(t[1]) for t in tags if re.fullmatch(r"h[1-6]", t)]
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), levels
    assert tags.count("table") == tags.count("caption") > 0
    assert all(a.get("scope") == "col" for t, a in audit.tags if t == "th")
    for tag, attrs in audit.tags:
        assert tag not in {"script", "img", "iframe", "link", "object", "embed"}
        assert "src" not in attrs and "style" not in attrs
        if tag == "a":
            href = attrs.get("href") or ""
            assert href.startswith(("#", "https://www.cnil.fr")), href
    assert "url(" not in page and "@import" not in page
