"""Pausing Python's cyclic garbage collector while a knowledge base is read or indexed.

Reading and indexing a knowledge base allocates hundreds of thousands of small objects that all stay
alive (YAML nodes, entries, postings). Each allocation burst makes the collector walk the growing heap
again, looking for reference cycles there are none of: at 10 000 entries that doubles the time to load
(3.4 s → 1.6 s) and to index. Plain reference counting still frees everything else at once; the
collector runs again, over whatever cycles accumulated, as soon as the last pause ends.

Only CPU-bound work is done inside a pause (files are read before it), so a pause always ends: a hung
network mount can block a read, never hold the collector off for the rest of the process's life.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pauses:
    """How many pauses are open; the collector is enabled again when the last one ends (if it was on)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.was_enabled = False

    def begin(self) -> None:
        with self.lock:
            if self.open == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.open += 1

    def end(self) -> None:
        with self.lock:
            self.open -= 1
            if self.open == 0 and self.was_enabled:
                gc.enable()


_PAUSES = _Pauses()


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (pauses may nest and overlap across threads)."""
    _PAUSES.begin()
    try:
        yield
    finally:
        _PAUSES.end()
