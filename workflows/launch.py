"""``python -m workflows.launch --log-format FORMAT <dramatiq arguments>``: Dramatiq's command
line with dsar's log format, as ``dsar worker`` runs it on RabbitMQ and Redis.

Dramatiq's parent process and its worker processes set up logging with
:func:`logging.basicConfig`, which does nothing when the root logger already has a handler. So
the root logger is configured here (:func:`dsar.logs.configure`) before Dramatiq's main runs:
the parent's lines ("booting up", "sending signal") and, through the fork, the worker
processes' lines before :mod:`workflows.entry` is imported come out in dsar's format, JSON when
``DSAR_LOG_FORMAT=json``, instead of Dramatiq's own between them.
"""

from __future__ import annotations

import sys

from dsar import logs


def main(argv: list[str]) -> int:
    # Dramatiq re-executes sys.argv on SIGHUP: make that this module again, not its file
    sys.argv = [sys.executable, "-m", "workflows.launch", *argv]
    log_format = "text"
    if argv[:1] == ["--log-format"]:
        log_format, argv = argv[1], argv[2:]
    logs.configure(log_format)
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    return int(dramatiq_main(make_argument_parser().parse_args(argv)) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
