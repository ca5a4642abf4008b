"""The cyclic garbage collector is paused while a knowledge base is read, and only then."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from bot.gc_pause import gc_paused


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_off_inside_a_pause_and_on_again_after_it(collector_on: None) -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_end_with_the_outer_one(collector_on: None) -> None:
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_pause_that_fails_still_ends(collector_on: None) -> None:
    with pytest.raises(ValueError, match="broken"), gc_paused():
        raise ValueError("broken")
    assert gc.isenabled()


def test_overlapping_pauses_in_two_threads_end_with_the_last_one(collector_on: None) -> None:
    inside, leave = threading.Event(), threading.Event()

    def other_load() -> None:
        with gc_paused():
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=other_load)
    with gc_paused():
        thread.start()
        inside.wait(5)
    assert not gc.isenabled()  # the other thread's load is still running
    leave.set()
    thread.join(5)
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_application_stays_off() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()
