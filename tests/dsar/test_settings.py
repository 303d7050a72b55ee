"""Settings from the environment: defaults, validation, and secrets kept out of sight."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsar import settings as settings_module
from dsar.errors import InvalidInput
from dsar.settings import SETTINGS_DOC, Settings

PASSWORD = "s3cr/et@pass"
SECRET_KEY = "c2VjcmV0LWtleS1zZWNyZXQta2V5LXNlY3JldC1rZXk="


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env({"DSAR_DATA_DIR": str(tmp_path)})
    assert s.data_dir == tmp_path
    assert s.database_url == f"sqlite:///{tmp_path / 'state.sqlite3'}"
    assert s.broker_url == "memory://"
    assert s.datamap_path == tmp_path / "datamap.yaml"
    assert s.export_url == str(tmp_path / "exports")
    assert s.signing_keys_dir == tmp_path / "signing-keys"
    assert s.master_key is None
    assert s.timezone == "UTC"
    assert s.default_regime == "gdpr"
    assert s.approval_required == frozenset()
    assert s.holiday_calendar is None
    assert (s.link_ttl_days, s.bundle_retention_days) == (30, 30)
    assert s.is_embedded


def test_values_read(tmp_path: Path) -> None:
    s = Settings.from_env({
        "DSAR_DATA_DIR": str(tmp_path), "DSAR_TIMEZONE": "Europe/Berlin",
        "DSAR_DEFAULT_REGIME": "uk_gdpr", "DSAR_APPROVAL_REQUIRED": " erasure, export ,",
        "DSAR_HOLIDAY_CALENDAR": " de ", "DSAR_LINK_TTL_DAYS": "7",
        "DSAR_DATABASE_URL": "postgresql+psycopg://u@h/db",
    })
    assert s.timezone == "Europe/Berlin"
    assert s.default_regime == "uk_gdpr"
    assert s.approval_required == frozenset({"erasure", "export"})
    assert s.holiday_calendar == "DE"
    assert s.link_ttl_days == 7
    assert not s.is_embedded


@pytest.mark.parametrize(("name", "value", "words"), [
    ("DSAR_TIMEZONE", "Mars/Olympus", "DSAR_TIMEZONE='Mars/Olympus' is not a known time zone"),
    ("DSAR_TIMEZONE", "", "DSAR_TIMEZONE='' is not a known time zone"),
    ("DSAR_TIMEZONE", "../etc/passwd", "is not a known time zone"),
    ("DSAR_TIMEZONE", "Europe", "is not a known time zone"),
    ("DSAR_DEFAULT_REGIME", "hipaa", "DSAR_DEFAULT_REGIME='hipaa' is not a regime"),
    ("DSAR_APPROVAL_REQUIRED", "erasure,delete", "unknown kinds: delete"),
    ("DSAR_LOG_FORMAT", "xml", "DSAR_LOG_FORMAT='xml' is unknown"),
    ("DSAR_LINK_TTL_DAYS", "0", "DSAR_LINK_TTL_DAYS='0' is not a positive whole number"),
    ("DSAR_BUNDLE_RETENTION_DAYS", "ten", "is not a positive whole number"),
])
def test_bad_setting_named(tmp_path: Path, name: str, value: str, words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        Settings.from_env({"DSAR_DATA_DIR": str(tmp_path), name: value})
    assert words in err.value.problem
    assert err.value.fix


@settings(max_examples=200)
@given(st.text(max_size=40))
def test_any_timezone_text_is_accepted_or_refused_cleanly(tz: str) -> None:
    try:
        s = Settings.from_env({"DSAR_DATA_DIR": "/nonexistent", "DSAR_TIMEZONE": tz})
    except InvalidInput as err:
        assert "DSAR_TIMEZONE" in err.problem
    else:
        assert s.timezone == tz


def test_redacted_hides_secrets(tmp_path: Path) -> None:
    s = Settings.from_env({
        "DSAR_DATA_DIR": str(tmp_path), "DSAR_MASTER_KEY": SECRET_KEY,
        "DSAR_DATABASE_URL": f"postgresql+psycopg://dsar:{PASSWORD}@db.internal:5432/dsar",
        "DSAR_BROKER_URL": "amqp://worker:brokerpw@mq:5672/",
    })
    shown = s.redacted()
    text = repr(shown) + repr(s)
    for secret in (PASSWORD, SECRET_KEY, "brokerpw", "s3cr"):
        assert secret not in text
    assert shown["database_url"] == "postgresql+psycopg://dsar:***@db.internal:5432/dsar"
    assert shown["broker_url"] == "amqp://worker:***@mq:5672/"
    assert shown["master_key"] == "(set)"
    assert set(shown) == {f.name for f in fields(Settings)}


def test_redacted_hides_password_in_query(tmp_path: Path) -> None:
    s = Settings.from_env({
        "DSAR_DATA_DIR": str(tmp_path),
        "DSAR_DATABASE_URL": "postgresql+psycopg://dsar@db/dsar?sslmode=require&password=qpw",
    })
    assert s.redacted()["database_url"] == (
        "postgresql+psycopg://dsar@db/dsar?sslmode=require&password=***")


def test_redacted_keeps_urls_without_secrets(tmp_path: Path) -> None:
    s = Settings.from_env({"DSAR_DATA_DIR": str(tmp_path)})
    shown = s.redacted()
    assert shown["database_url"] == s.database_url
    assert shown["master_key"] == "(generated file in the data directory)"
    assert shown["approval_required"] == "none"
    assert shown["holiday_calendar"] == "none"


def test_settings_doc_names_every_variable_read() -> None:
    source = Path(settings_module.__file__).read_text()
    read = set(re.findall(r"\"(DSAR_[A-Z_]+)\"", source))
    assert read <= set(SETTINGS_DOC)
    assert all(len(doc) == 2 and all(doc) for doc in SETTINGS_DOC.values())


def test_every_setting_has_a_documented_variable() -> None:
    """`dsar config` and the README list settings from SETTINGS_DOC: none may be missing."""
    from dataclasses import fields

    from dsar.settings import SETTINGS_DOC, Settings, env_name

    assert sorted(env_name(f.name) for f in fields(Settings)) == sorted(SETTINGS_DOC)
