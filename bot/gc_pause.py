"""Pausing Python's cyclic garbage collector while a knowledge base is read or indexed.

Reading and indexing a knowledge base allocates hundreds of thousands of small objects that all stay
alive (YAML nodes, entries, postings). Each allocation burst makes the collector walk the growing heap
again, looking for reference cycles there are none of: at 10 000 entries that doubles the time to load
(3.4 s → 1.6 s) and to index. Plain reference counting still frees everything else at once.

When the last pause ends after a large build, what is alive is frozen (`gc.freeze`): the knowledge
base just built lives until the next reload, and walking it again later would cost as much as the
first walk saved (another 0.3 s at 10 000 entries). The next pause first unfreezes and collects, so
cycles left behind by the previous knowledge base are freed then: kept until the next reload, never
for good. A small build is not frozen (walking it costs little), so nothing needs collecting before
the next one either.

Only CPU-bound work is done inside a pause (files are read before it), so a pause always ends: a hung
network mount can block a read, never hold the collector off for the rest of the process's life.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

FREEZE_AFTER = 200_000  # objects a pause left alive: about 2 000 entries of 10 examples (shipped: 25 000)


class _Pauses:
    """How many pauses are open; the collector is enabled again when the last one ends (if it was on)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.was_enabled = False
        self.froze = False  # objects are frozen since the last pause ended

    def begin(self) -> None:
        with self.lock:
            if self.open == 0:
                self.was_enabled = gc.isenabled()
                if self.was_enabled and self.froze:
                    gc.unfreeze()  # what the last pause froze may be garbage now (a replaced index)
                    gc.collect()
                    self.froze = False
                gc.disable()
            self.open += 1

    def end(self) -> None:
        with self.lock:
            self.open -= 1
            if self.open == 0 and self.was_enabled:
                if gc.get_count()[0] >= FREEZE_AFTER:
                    gc.freeze()
                    self.froze = True
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
