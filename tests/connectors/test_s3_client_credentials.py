"""The S3 client takes its credentials from the connector's environment (the App's, which the
demo sets without touching the process's), else from boto3's standard chain."""

from __future__ import annotations

import pytest

from connectors.s3_client import make_client

ARGS = {"endpoint_url": "http://127.0.0.1:9", "region": "us-east-1", "retry_mode": "standard",
        "max_attempts": 1, "timeout": 1.0}


def credentials_of(client: object) -> object:
    return client._request_signer._credentials  # type: ignore[attr-defined]


def test_credentials_come_from_the_connector_environment(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    client = make_client(**ARGS, environ={"AWS_ACCESS_KEY_ID": "from-context",
                                          "AWS_SECRET_ACCESS_KEY": "secret",
                                          "AWS_SESSION_TOKEN": "token"})
    found = credentials_of(client)
    assert (found.access_key, found.secret_key, found.token) == (
        "from-context", "secret", "token")


def test_without_a_key_there_the_standard_chain_decides(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-process")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "process-secret")
    client = make_client(**ARGS, environ={"AWS_SECRET_ACCESS_KEY": "ignored without a key"})
    found = credentials_of(client)
    assert (found.access_key, found.secret_key) == ("from-process", "process-secret")
