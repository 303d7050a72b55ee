"""Errors raised when a record, envelope or checkpoint fails to verify."""

from __future__ import annotations

from dsar.errors import DsarError


class VerificationError(DsarError):
    """Something that claims to be signed or proven does not check out.

    Raised only by verifiers; a verifier never returns a half-trusted value. ``str(err)`` says
    what failed, ``err.fix`` what the person can do about it.
    """


class EnvelopeError(VerificationError):
    """A DSSE envelope is malformed, or no trusted key's signature on it verifies."""


class CheckpointError(VerificationError):
    """A signed checkpoint is malformed, for another log, or not signed by the expected key."""
