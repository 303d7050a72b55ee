"""The portal built from the environment, for uvicorn's worker processes (``--workers``)."""

from __future__ import annotations

from starlette.applications import Starlette

from dsar.app import App
from interfaces.portal.app import make_portal


def from_env() -> Starlette:
    """``uvicorn --factory interfaces.portal.serving:from_env``: one portal per worker process."""
    return make_portal(App.from_env())
