"""What every command gets from the root group: the application context and the actor."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import click

from dsar.app import App


@dataclass
class CliState:
    actor: str

    @cached_property
    def app(self) -> App:
        return App.from_env()


pass_state = click.make_pass_decorator(CliState)
