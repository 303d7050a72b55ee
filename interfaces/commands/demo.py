"""``dsar demo``."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import click

from dsar.errors import DsarError
from interfaces.commands.output import console, json_option, print_json, styled


@click.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              default=Path("dsar-demo"), show_default=True,
              help="Where to build the sample company (replaced if it exists).")
@click.option("--customers", default=300, show_default=True, help="How many sample customers.")
@json_option
def demo(folder: Path, customers: int, as_json: bool) -> None:
    """Build a sample company and run an access, an export and an erasure request end to end.

    Creates a SQLite shop database and an S3 bucket (moto's server on 127.0.0.1), a data map
    describing both, then runs the three requests for one sample person through the real
    worker code on the in-process broker, and verifies each signed completion record. Nothing
    outside the demo folder is touched.
    """
    if find_spec("moto") is None or find_spec("flask") is None:  # moto's server needs flask
        raise DsarError("the demo needs moto's S3 server, which is not installed",
                        "install the 'demo' extra: pip install 'dsar[demo]' (or \".[demo]\" "
                        "in a checkout)")
    from rich.console import Console

    from interfaces.demo.run import run_demo

    out = Console(stderr=True, markup=False) if as_json else console
    result = run_demo(folder.resolve(), out, customers)
    if as_json:
        print_json({"folder": result.folder, "requests": result.requests,
                    "all_verified": result.all_verified})
    else:
        verdict = "[green]all 3 completion records verified[/]" if result.all_verified \
            else "[red]not every record verified[/]"
        out.print(styled(verdict))
        out.print(f"""
What to look at next:
  {folder}/exports/                 the bundles (encrypted); `dsar bundle ID` for a link
  {folder}/records/*.json           completion records; check one with
      dsar verify {folder}/records/<id>.json \\
          --ledger {folder}/records/ledger.json
  {folder}/datamap.yaml             the data map that drove it all
  to look around with dsar itself (the bucket lived only while the demo ran):
      export DSAR_DATA_DIR={folder}/state DSAR_EXPORT_URL={folder}/exports
      dsar list; dsar show <id>; dsar record <id> --html -o record.html
  README.md, "A request, from submission to verified record", goes on from here
""")
    if not result.all_verified:
        raise SystemExit(1)
