"""Errors that reach a person.

Every error a user can cause is a :class:`DsarError`: it carries one line that says what is
wrong and a ``fix`` that says what to do. The CLI prints both and exits non-zero without a
traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DsarError(Exception):
    """A problem the user can fix. ``str(err)`` is the problem; ``err.fix`` the remedy."""

    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def one_line(self) -> str:
        """The message as printed: ``problem; fix``."""
        return f"{self.problem}; {self.fix}" if self.fix else self.problem


class InvalidInput(DsarError):
    """A value given on the command line, the web form or a file is malformed."""


class NotFound(DsarError):
    """A request, bundle, key or record that was named does not exist."""

    exit_code = 3


class IllegalTransition(DsarError):
    """A lifecycle change that the request's current state does not allow."""

    exit_code = 4


class DataMapError(DsarError):
    """The data map is malformed or disagrees with the live systems."""


class ConnectorError(DsarError):
    """A connector could not do its work. ``transient`` failures may be retried."""

    exit_code = 5

    def __init__(
        self,
        problem: str,
        fix: str | None = None,
        *,
        system: str | None = None,
        collection: str | None = None,
        code: str = "connector_error",
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(problem, fix)
        self.system = system
        self.collection = collection
        self.code = code
        self.transient = transient
        self.retry_after = retry_after
