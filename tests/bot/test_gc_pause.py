"""The cyclic garbage collector is paused while a knowledge base is read, and only then."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from bot.gc_pause import FREEZE_AFTER, Pauses, gc_paused


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


class Node:
    """An object in a reference cycle, as an index's parts can be."""

    def __init__(self) -> None:
        self.me = self


def test_what_a_large_build_left_is_frozen_and_its_cycles_are_freed_by_a_later_pause(
    collector_on: None,
) -> None:
    pauses = Pauses(collect_after=0.0)  # the next reload comes "later" at once
    with pauses.paused():
        built = Node()
        rest = [[number] for number in range(FREEZE_AFTER)]  # the rest of a large knowledge base
    alive = weakref.ref(built)
    assert gc.get_freeze_count() > 0  # not walked again until the next knowledge base is read
    del built, rest  # the knowledge base is replaced: its cycle is garbage, but frozen
    gc.collect()
    assert alive() is not None

    with pauses.paused():
        assert alive() is None  # unfrozen and collected before the next one is read


def test_the_index_built_right_after_its_knowledge_base_does_not_collect_first(collector_on: None) -> None:
    pauses = Pauses(collect_after=3600.0)
    with pauses.paused():
        built = Node()
        rest = [[number] for number in range(FREEZE_AFTER)]
    alive = weakref.ref(built)
    del built, rest

    with pauses.paused():
        assert alive() is not None  # still frozen: no walk of the heap between the two
    gc.unfreeze()
    gc.collect()
    assert alive() is None


def test_a_small_build_is_not_frozen(collector_on: None) -> None:
    gc.unfreeze()
    with gc_paused():
        built = [Node() for _ in range(100)]
    assert gc.get_freeze_count() == 0
    assert len(built) == 100
