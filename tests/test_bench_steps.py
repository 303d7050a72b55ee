"""The step clock of ``bench.request_steps``: each step's time excludes the timed steps it
calls, and the functions are themselves again afterwards."""

from __future__ import annotations

import sys
import time
import types

import pytest

from bench.request_steps import StepClock


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@pytest.fixture
def module() -> types.ModuleType:
    mod = types.ModuleType("steps_under_test")

    def inner() -> str:
        _spin(0.04)
        return "inner"

    def outer() -> str:
        _spin(0.02)
        return mod.inner() + "+outer"  # looked up at call time, as module globals are

    mod.inner, mod.outer = inner, outer
    sys.modules[mod.__name__] = mod
    yield mod
    del sys.modules[mod.__name__]


def test_nested_steps_count_only_their_own_time(module: types.ModuleType) -> None:
    steps = [(module.__name__, "outer", "outer"), (module.__name__, "inner", "inner")]
    with StepClock().timing(steps) as clock:
        assert module.outer() == "inner+outer"
        assert module.inner() == "inner"
    assert clock.cpu["inner"] == pytest.approx(0.08, abs=0.02)
    assert clock.cpu["outer"] == pytest.approx(0.02, abs=0.015)
    assert clock.wall["outer"] < clock.wall["inner"]


def test_functions_are_restored_even_after_an_error(module: types.ModuleType) -> None:
    original = module.outer
    with pytest.raises(RuntimeError), StepClock().timing([(module.__name__, "outer", "o")]):
        assert module.outer is not original
        raise RuntimeError("stop")
    assert module.outer is original


def test_a_step_that_raises_is_still_timed(module: types.ModuleType) -> None:
    def failing() -> None:
        _spin(0.02)
        raise ValueError("no")

    module.outer = failing
    clock = StepClock()
    with clock.timing([(module.__name__, "outer", "failing")]), pytest.raises(ValueError):
        module.outer()
    assert clock.cpu["failing"] == pytest.approx(0.02, abs=0.015)
