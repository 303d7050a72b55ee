"""The lease keeper: one thread renews every running task's lease until the task ends."""

from __future__ import annotations

import threading
import time

import pytest

from tests.workflows.fleet_helpers import wait_until
from workflows.leases import LeaseKeeper

TICK = 0.02


class Renewals:
    """A renew function that counts its calls and answers as told."""

    def __init__(self, answer: bool | Exception = True) -> None:
        self.calls, self.answer = 0, answer

    def __call__(self) -> bool:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def keepers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lease-keeper"]


def test_every_held_lease_is_renewed_until_its_task_ends_by_one_thread() -> None:
    keeper, first, second = LeaseKeeper(), Renewals(), Renewals()
    before = set(keepers())  # other tests' keepers may end meanwhile (after an idle minute)
    with keeper.hold("task 1", first, TICK):
        with keeper.hold("task 2", second, TICK * 2):
            wait_until(lambda: first.calls >= 4 and second.calls >= 2, 5, "renewals")
            assert len(set(keepers()) - before) == 1
        ended = second.calls
        wait_until(lambda: first.calls >= 8, 5, "the first task's renewals")
    assert second.calls == ended  # not renewed once its task ended
    stopped = first.calls
    time.sleep(TICK * 5)
    assert first.calls == stopped


def test_a_lease_taken_over_is_not_renewed_again() -> None:
    keeper, lost = LeaseKeeper(), Renewals(answer=False)
    with keeper.hold("task 3", lost, TICK):
        wait_until(lambda: lost.calls == 1, 5, "the first renewal")
        time.sleep(TICK * 5)
        assert lost.calls == 1


def test_a_renewal_that_fails_is_tried_again_and_logged_with_ids_only(
        caplog: pytest.LogCaptureFixture) -> None:
    keeper, failing = LeaseKeeper(), Renewals(answer=ConnectionError("customer@example.com"))
    with keeper.hold("task 4", failing, TICK):
        wait_until(lambda: failing.calls >= 3, 5, "renewals after failures")
    lines = [r.getMessage() for r in caplog.records if r.name == "dsar.worker"]
    assert lines and all(line == "could not renew the lease of task 4 (ConnectionError); "
                         "trying again" for line in lines)


def test_leaving_waits_for_a_renewal_in_progress() -> None:
    """The task's result is recorded only after its last renewal committed (the two would
    otherwise lock the same rows in opposite orders)."""
    keeper, started, release = LeaseKeeper(), threading.Event(), threading.Event()
    finished: list[str] = []

    def slow() -> bool:
        started.set()
        release.wait(5)
        finished.append("renewal")
        return True

    def end_task() -> None:
        with keeper.hold("task 5", slow, TICK):
            started.wait(5)
        finished.append("task")

    task = threading.Thread(target=end_task)
    task.start()
    assert started.wait(5)
    time.sleep(TICK * 5)
    assert finished == []  # the task is still waiting for the renewal
    release.set()
    task.join(5)
    assert finished == ["renewal", "task"]
