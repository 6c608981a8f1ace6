"""Lowering the delivering thread's CPU priority: a nice increment, or SCHED_IDLE."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest

from router.config.model import MAX_NICE
from router.process_pool import lower_priority


def in_thread(call: Callable[[], None]) -> tuple[int, int]:
    """Run ``call`` in a new thread (the policy and nice value are per thread on Linux); its
    (scheduling policy, nice value) afterwards."""
    seen: list[tuple[int, int]] = []

    def run() -> None:
        call()
        seen.append((os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return seen[0]


def test_a_nice_increment_lowers_only_the_calling_thread() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert in_thread(lambda: lower_priority(4)) == (os.SCHED_OTHER, min(base + 4, MAX_NICE))
    assert os.getpriority(os.PRIO_PROCESS, 0) == base


def test_idle_takes_the_sched_idle_policy_whatever_the_nice_increment() -> None:
    policy, _nice = in_thread(lambda: lower_priority(3, idle=True))
    assert policy == os.SCHED_IDLE
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_without_sched_idle_the_lowest_nice_stands_in(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refused)
    assert in_thread(lambda: lower_priority(3, idle=True)) == (os.SCHED_OTHER, MAX_NICE)
