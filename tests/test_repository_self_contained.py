"""A fresh clone is enough: nothing in the repository reads a folder beside it.

Tests once read their dataset from ``../shared``, which a user's clone does not have. This guard
fails when any tracked test, infra or CI file names that folder or the variable that pointed
there again.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN = re.compile(r"\.\./shared|DSAR_SHARED_DIR|parent\s*/\s*[\"']shared[\"']")
SCANNED = ("tests", "infra", ".ci", "dsar", "workflows", "connectors", "bench", "cli.py",
           "pyproject.toml", "README.md")


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", "--", *SCANNED], cwd=REPO,
                         capture_output=True, check=True).stdout.decode()
    return [REPO / name for name in out.split("\0") if name]


def test_nothing_reads_a_folder_beside_the_clone() -> None:
    here = Path(__file__).resolve()
    offenders = []
    for path in tracked_files():
        if path == here or not path.is_file() or path.suffix in {".sqlite", ".sql"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{path.relative_to(REPO)}:{n}" for n, line in
                      enumerate(text.splitlines(), 1) if FORBIDDEN.search(line)]
    assert offenders == [], f"files that read outside the clone: {offenders}"


def test_the_test_dataset_ships_with_its_licence() -> None:
    chinook = REPO / "tests" / "data" / "chinook"
    for name in ("Chinook_Sqlite.sqlite", "Chinook_PostgreSql.sql", "Chinook_MySql.sql",
                 "LICENSE.md"):
        assert (chinook / name).is_file(), f"tests/data/chinook/{name} is missing"
    assert "Permission is hereby granted" in (chinook / "LICENSE.md").read_text()


def test_no_test_stops_the_machines_services() -> None:
    """Stopping a broker or database is done on a private instance (tests/workflows/
    private_rabbit.py), never on the services other tests and people on the host use."""
    stops = re.compile(r"[\"']stop_app[\"']|rabbitmqctl[\"'],\s*[\"']stop|pg_ctl\w*.*stop|"
                       r"SHUTDOWN|systemctl\s+(stop|restart)|service\s+\S+\s+(stop|restart)")
    allowed = {REPO / "tests" / "workflows" / "private_rabbit.py", Path(__file__).resolve()}
    offenders = [f"{p.relative_to(REPO)}:{n}" for p in tracked_files()
                 if p.suffix == ".py" and p.is_relative_to(REPO / "tests") and p not in allowed
                 for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
                 if stops.search(line)]
    assert offenders == [], f"tests that stop a shared service: {offenders}"
