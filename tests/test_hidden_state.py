"""No hidden state: importing the code builds nothing, nothing changes ``os.environ``, every
``DSAR_*`` variable is read through :mod:`dsar.settings`, listeners are registered by a call at
set-up, and what outlives a call lives on an object with a lifetime (the App, a StateDB)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from dsar.app import App, Hooks
from dsar.crypto import Keys
from dsar.db.engine import WAKE_RELAY, StateDB
from dsar.settings import SETTINGS_DOC, Settings, raw_setting
from workflows import leases
from workflows.leases import LeaseKeeper

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dsar", "connectors", "workflows", "interfaces")
#: Alembic runs its env.py as a script when it migrates; it is not imported by the code.
NOT_IMPORTED = ("dsar/db/migrations/",)


def production_files() -> Iterator[Path]:
    yield ROOT / "cli.py"
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not any(path.relative_to(ROOT).as_posix().startswith(p) for p in NOT_IMPORTED):
                yield path


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ``."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ")


def _dsar_constant(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) \
            and node.value.startswith("DSAR_"):
        return node.value
    return None


def variable_reads(tree: ast.AST) -> set[str]:
    """The ``DSAR_*`` names the code reads: ``x.get("DSAR_…")``, ``getenv("DSAR_…")``,
    ``x["DSAR_…"]`` (read, not assigned) and ``"DSAR_…" in x``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("get", "getenv", "pop") and (value := _dsar_constant(node.args[0])):
                found.add(value)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if value := _dsar_constant(node.slice):
                found.add(value)
        elif isinstance(node, ast.Compare) and any(
                isinstance(o, ast.In | ast.NotIn) for o in node.ops) and (
                value := _dsar_constant(node.left)):
            found.add(value)
    return found


def environ_changes(tree: ast.AST) -> list[int]:
    """Lines that change the process's environment."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if _is_environ(node.func.value) and node.func.attr in (
                    "update", "setdefault", "pop", "popitem", "clear", "__setitem__"):
                lines.append(node.lineno)
            if node.func.attr in ("putenv", "unsetenv"):
                lines.append(node.lineno)
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            if any(isinstance(t, ast.Subscript) and _is_environ(t.value) for t in targets):
                lines.append(node.lineno)
    return lines


def listeners_at_import(tree: ast.Module) -> list[int]:
    """Lines of module level code (decorators included) that register a SQLAlchemy event
    listener when the module is imported."""
    lines = []
    for statement in tree.body:
        nodes: list[ast.AST] = []
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            nodes = list(statement.decorator_list)
        elif not isinstance(statement, ast.Import | ast.ImportFrom):
            nodes = [statement]
        for node in nodes:
            for call in ast.walk(node):
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute | ast.Name):
                    name = getattr(call.func, "attr", getattr(call.func, "id", ""))
                    if name in ("listen", "listens_for"):
                        lines.append(call.lineno)
    return lines


def test_no_dsar_variable_is_read_outside_the_settings_module() -> None:
    settings_module = ROOT / "dsar" / "settings.py"
    readers = {}
    for path in production_files():
        if path != settings_module:
            reads = variable_reads(ast.parse(path.read_text(), str(path)))
            if reads:
                readers[path.relative_to(ROOT).as_posix()] = sorted(reads)
    assert readers == {}
    # and the settings module reads only variables of Settings fields
    assert variable_reads(ast.parse(settings_module.read_text())) <= set(SETTINGS_DOC)


def test_nothing_changes_the_environment_or_registers_a_listener_at_import() -> None:
    changes, listeners = {}, {}
    for path in production_files():
        tree = ast.parse(path.read_text(), str(path))
        name = path.relative_to(ROOT).as_posix()
        if lines := environ_changes(tree):
            changes[name] = lines
        if lines := listeners_at_import(tree):
            listeners[name] = lines
    assert changes == {}
    assert listeners == {}


def test_the_checks_see_what_they_look_for() -> None:
    """The AST checks above are not vacuous: each flags the pattern it guards against."""
    code = ast.parse(
        'import os\nfrom sqlalchemy import event\n'
        'x = os.environ.get("DSAR_A")\ny = env["DSAR_B"]\nz = "DSAR_C" in env\n'
        'os.environ["DSAR_D"] = "1"\nos.environ.update({})\nos.putenv("A", "b")\n'
        '@event.listens_for(Session, "after_commit")\ndef f(s): pass\n'
        'event.listen(engine, "connect", f)\n'
        'def g():\n    event.listen(engine, "connect", f)\n'
        'child = {"DSAR_E": "1"}\nchild["DSAR_F"] = "2"\n')
    assert variable_reads(code) == {"DSAR_A", "DSAR_B", "DSAR_C"}
    assert environ_changes(code) == [6, 7, 8]
    assert listeners_at_import(code) == [9, 11]


IMPORT_EVERYTHING = """
import gc, json, os, sys, threading
before = dict(os.environ)
for name in json.loads(sys.argv[1]):
    __import__(name)
import dramatiq.broker
from sqlalchemy.engine import Engine
from dsar.app import App
from dsar.db.engine import StateDB
kinds = (Engine, App, StateDB, dramatiq.broker.Broker)
built = sorted({type(o).__name__ for o in gc.get_objects() if isinstance(o, kinds)})
print(json.dumps({"built": built, "environ_changed": dict(os.environ) != before,
                  "global_broker": dramatiq.broker.global_broker is not None,
                  "threads": sorted(t.name for t in threading.enumerate())}))
"""


def test_importing_every_module_builds_nothing() -> None:
    """In a fresh interpreter, importing every module of the code makes no engine, App,
    state database or broker, sets no global broker, starts no thread and leaves the
    environment as it was."""
    names = [module_name(path) for path in production_files()]
    assert "workflows.entry" in names and "interfaces.demo.run" in names
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING, json.dumps(names)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"built": [], "environ_changed": False, "global_broker": False,
                     "threads": ["MainThread"]}


# -- what outlives a call lives on an object with a lifetime ---------------------------------


@pytest.fixture
def two_apps(tmp_path: Path) -> Iterator[tuple[App, App]]:
    apps = []
    for name in ("a", "b"):
        settings_ = Settings.from_env({"DSAR_DATA_DIR": str(tmp_path / name)})
        apps.append(App(settings=settings_, keys=Keys.load(None, settings_.data_dir),
                        db=StateDB(settings_.database_url)))
    yield apps[0], apps[1]
    for app in apps:
        app.db.dispose()


class Counter:
    made = 0

    def __init__(self) -> None:
        Counter.made += 1


def test_app_locals_are_made_once_per_app_and_never_shared(two_apps: tuple[App, App]) -> None:
    a, b = two_apps
    first = a.local(Counter)
    assert a.local(Counter) is first
    assert b.local(Counter) is not first
    assert Counter.made == 2
    assert a.hooks == Hooks() and a.hooks is not b.hooks


def test_a_commit_wakes_the_relays_of_its_own_database_only(two_apps: tuple[App, App]) -> None:
    a, b = two_apps
    for app in (a, b):
        with app.db.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    with a.db.session() as session:  # a commit that does not ask
        session.execute(sa.text("INSERT INTO t VALUES (1)"))
    assert not a.db.committed.is_set()
    with a.db.session() as session:
        session.execute(sa.text("INSERT INTO t VALUES (2)"))
        session.info[WAKE_RELAY] = True
    assert a.db.committed.is_set() and not b.db.committed.is_set()
    a.db.committed.clear()
    with pytest.raises(RuntimeError), a.db.session() as session:  # rolled back: no wake
        session.info[WAKE_RELAY] = True
        raise RuntimeError
    assert not a.db.committed.is_set()


def test_the_lease_keeper_thread_ends_when_nothing_is_held(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setattr(leases, "IDLE_SECONDS", 0.2)
    keeper = LeaseKeeper()
    renewed: list[int] = []
    with keeper.hold("test", lambda: renewed.append(1) is None, 0.05):
        time.sleep(0.3)
        thread = keeper._thread
        assert thread is not None and thread.is_alive()
    assert renewed
    thread.join(timeout=5)
    assert not thread.is_alive()
    with keeper.hold("again", lambda: True, 0.05):  # a later hold starts another thread
        assert keeper._thread is not None and keeper._thread.is_alive()


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(["actor", "datamap_path", "broker_url", "timezone"]),
       st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
               max_size=20))
def test_raw_setting_reads_the_field_variable_trimmed(field: str, value: str) -> None:
    name = "DSAR_DATAMAP" if field == "datamap_path" else f"DSAR_{field.upper()}"
    assert raw_setting(field, {name: value}) == (value.strip() or None)
    assert raw_setting(field, {}) is None


def test_raw_setting_refuses_a_name_that_is_not_a_setting() -> None:
    with pytest.raises(KeyError):
        raw_setting("test_task_delay", {})
