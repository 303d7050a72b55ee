"""The exit codes of the ``dsar`` command line, in one place: the commands use these names, and
``dsar --help`` and the README list the same table."""

from __future__ import annotations

OK = 0
CHECK_FAILED = 1
BAD_INPUT = 2
NOT_FOUND = 3
NOT_ALLOWED = 4
CONNECTOR_FAILED = 5
BUNDLE_CORRUPTED = 6  # dsar.bundles.errors.BundleCorrupted
NEEDS_ATTENTION = 7
STILL_RUNNING = 8
ORIGIN_UNCHECKED = 9  # verify without --public-key: intact, but who signed it is not checked

#: (code, meaning), as ``dsar --help`` prints them
TABLE: tuple[tuple[int, str], ...] = (
    (OK, "done; submit --wait: completed, or waiting for a step of yours (confirm-identity,\n"
         "approve, resume)"),
    (CHECK_FAILED, "a check failed: verify, datamap check, demo (an unexpected error, with a\n"
                   "traceback, is a bug: please report it)"),
    (BAD_INPUT, "bad input: a malformed value, a wrong option, a data map problem"),
    (NOT_FOUND, "the request, bundle, key or record named does not exist"),
    (NOT_ALLOWED, "not allowed in the request's current state"),
    (CONNECTOR_FAILED, "a connected system could not do the work"),
    (BUNDLE_CORRUPTED, "a stored bundle failed its integrity check (changed, or the wrong key)"),
    (NEEDS_ATTENTION, "submit --wait: the request needs attention (`dsar show ID` says why)"),
    (STILL_RUNNING, "submit --wait: still in progress when the wait ended (after an hour)"),
    (ORIGIN_UNCHECKED, "verify: every check passed with the key inside the bundle, but its\n"
                       "origin was not checked (give --public-key to check who signed it)"),
)


def help_block() -> str:
    """The table for ``--help``, one code a line (click keeps the lines after ``\\b``)."""
    lines = [f"  {code}  {meaning}".replace("\n", "\n     ") for code, meaning in TABLE]
    return "\b\nExit codes:\n" + "\n".join(lines)


def for_waited_state(state: str) -> int:
    """The exit code of ``submit --wait`` for the state the request settled in."""
    if state == "needs_attention":
        return NEEDS_ATTENTION
    if state in ("in_progress", "received", "verified"):
        return STILL_RUNNING
    return OK
