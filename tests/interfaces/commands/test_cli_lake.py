"""``dsar lake expire`` through the command line, on a Delta table in moto's S3 server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from click.testing import CliRunner
from deltalake import DeltaTable, write_deltalake

from cli import main
from tests.s3server import ENDPOINT_ENV

pytest_plugins = ["tests.s3server"]


def _map(path: Path, bucket: str) -> str:
    path.write_text(yaml.safe_dump({"version": 1, "systems": [{
        "name": "files", "kind": "s3", "bucket": bucket, "endpoint_url_env": ENDPOINT_ENV,
        "region": "us-east-1", "shared": [{
            "name": "events", "prefix": "delta/events/", "format": "delta",
            "match": {"email": "email"}}]}]}))
    return str(path)


def test_expire_prints_json_and_old_versions_lose_their_files(
        moto_endpoint: str, make_bucket: Any, tmp_path: Path) -> None:
    bucket = make_bucket()
    options = {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ALLOW_HTTP": "true",
               "AWS_REGION": "us-east-1", "conditional_put": "etag"}
    uri = f"s3://{bucket}/delta/events"
    write_deltalake(uri, pa.table({"email": ["a@example.com", "b@example.com"]}),
                    storage_options=options)
    DeltaTable(uri, storage_options=options).delete("email = 'a@example.com'")
    datamap = _map(tmp_path / "map.yaml", bucket)
    env = {ENDPOINT_ENV: moto_endpoint}

    kept = CliRunner().invoke(main, ["lake", "expire", "files", "events", "--datamap", datamap,
                                     "--json"], env=env, prog_name="dsar")
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.output)["files_deleted"] == 0  # younger than the table's week
    result = CliRunner().invoke(main, ["lake", "expire", "files", "events", "--older-than", "0",
                                       "--datamap", datamap, "--json"], env=env, prog_name="dsar")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["files_deleted"] == 1 and out["older_than_hours"] == 0
    assert out["at"].endswith("+00:00")
    try:
        DeltaTable(uri, storage_options=options, version=0).to_pyarrow_table()
    except OSError:
        pass  # version 0's file is gone
    else:
        raise AssertionError("version 0 can still be read after expiry")


def test_bad_input_is_one_line_that_names_the_fix(moto_endpoint: str, make_bucket: Any,
                                                  tmp_path: Path) -> None:
    datamap = _map(tmp_path / "map.yaml", make_bucket())
    for args, fix in ((["files", "events", "--older-than", "soon"], "12h, 7d"),
                      (["nope", "events"], "files"),
                      (["files", "other"], "events")):
        result = CliRunner().invoke(main, ["lake", "expire", *args, "--datamap", datamap],
                                    env={ENDPOINT_ENV: "http://127.0.0.1:9"}, prog_name="dsar")
        assert result.exit_code != 0
        assert "Traceback" not in result.output and fix in result.output, result.output
