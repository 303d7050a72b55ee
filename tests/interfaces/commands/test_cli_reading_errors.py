"""A state database URL that cannot be parsed or reached, and a broker URL of an unknown scheme,
are one line naming the fix: never a traceback, never the password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

PASSWORD = "Pw-h11-secret"


def dsar(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command line, in a process of its own: what a person sees."""
    return subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", *args], capture_output=True,
        text=True, timeout=120, cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "DSAR_DATA_DIR": str(tmp_path), **env})


def one_line(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.slow  # a subprocess per case
@pytest.mark.parametrize(("url", "code", "needles"), [
    ("not a url", 2, ("DSAR_DATABASE_URL is not a database URL", "postgresql+psycopg://")),
    ("mysql+nosuchdriver://u@h/d", 2, ("'mysql+nosuchdriver'", "cannot load")),
    (f"postgresql+psycopg://dsar:{PASSWORD}@127.0.0.1:1/dsar", 5,
     ("cannot reach the state database", "dsar:***@127.0.0.1:1", "Connection refused",
      "check DSAR_DATABASE_URL")),
    (f"postgresql+psycopg://postgres:{PASSWORD}@no-such-host.invalid/dsar", 5,
     ("cannot reach the state database", "no-such-host.invalid", "check DSAR_DATABASE_URL")),
    ("postgresql+psycopg://h11_no_such_role@127.0.0.1:5432/dsar", 5,
     ("cannot reach the state database", "h11_no_such_role", "check DSAR_DATABASE_URL")),
    ("sqlite:////proc/no-such-folder/state.sqlite3", 2,
     ("/proc/no-such-folder/state.sqlite3 cannot be made", "a folder you can write")),
    (f"sqlite:///{Path(__file__).resolve()}", 5, ("file is not a database",)),
])
def test_bad_state_database_url_is_one_line(tmp_path: Path, url: str, code: int,
                                            needles: tuple[str, ...]) -> None:
    one_line(dsar(tmp_path, "list", DSAR_DATABASE_URL=url), code, *needles)
    json_out = dsar(tmp_path, "list", "--json", DSAR_DATABASE_URL=url)
    assert json_out.returncode == code and "Traceback" not in json_out.stderr
    assert '"error"' in json_out.stdout and PASSWORD not in json_out.stdout


@pytest.mark.slow  # a subprocess per case
@pytest.mark.parametrize("url", ["kafka://broker:9092", f"amqp+x://u:{PASSWORD}@h/",
                                 f"u:{PASSWORD}@rabbit:5672"])
def test_unknown_broker_scheme_is_one_line(tmp_path: Path, url: str) -> None:
    line = one_line(dsar(tmp_path, "submit", "access", "--email", "a@example.com",
                         DSAR_BROKER_URL=url), 2, "DSAR_BROKER_URL", "amqp://", "memory://")
    assert "kafka" in line or "amqp+x" in line or "no scheme" in line
    assert not (tmp_path / "state.sqlite3").exists()  # nothing was submitted


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.text(max_size=60),
    st.builds("{}://{}".format, st.from_regex(r"[a-z][a-z0-9+]{0,12}", fullmatch=True),
              st.text(max_size=40))).filter(lambda url: "sqlite" not in url))
def test_any_database_url_text_is_an_engine_or_a_one_line_error(url: str) -> None:
    """Whatever a person puts in DSAR_DATABASE_URL, making the engine (no connection yet)
    either works or raises one line naming the variable, never the raw text."""
    from dsar.db.engine import create_state_engine
    from dsar.errors import InvalidInput

    try:
        engine = create_state_engine(url)
    except InvalidInput as err:
        assert "\n" not in err.one_line() and "DSAR_DATABASE_URL" in err.one_line()
    else:
        engine.dispose()
