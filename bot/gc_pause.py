"""Pausing Python's cyclic garbage collector while a knowledge base is read or indexed.

Reading and indexing a knowledge base allocates hundreds of thousands of small objects that all stay
alive (YAML nodes, entries, postings). Each allocation burst makes the collector walk the growing heap
again, looking for reference cycles there are none of: at 10 000 entries that doubles the time to load
(3.4 s → 1.6 s) and to index. Plain reference counting still frees everything else at once.

When the last pause ends after a large build, what is alive is frozen (`gc.freeze`): the knowledge
base just built lives until the next reload, and walking it again later would cost as much as the
first walk saved (another 0.3 s at 10 000 entries). A later pause first unfreezes and collects, so
cycles left behind by the previous knowledge base are freed then: kept until the next reload, never
for good (`Pauses` says which pauses do not collect first). A small build is not frozen: walking it
costs little, and nothing needs collecting before the next one.

Only CPU-bound work is done inside a pause (files are read before it, the fit cache's small file
aside), so a pause ends: a hung network mount can block a read, not hold the collector off for good.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

COLLECT_AFTER = 10.0  # seconds: reloads come minutes apart; a load and its index, within a second
FREEZE_AFTER = 200_000  # objects a pause left alive: about 2 000 entries of 10 examples (shipped: 25 000)


class Pauses:
    """How many pauses are open; the collector is enabled again when the last one ends (if it was on).

    `collect_after`: seconds after a freeze from which the next pause collects first. A pause that
    follows closely (the index built right after its knowledge base is read) does not: there is
    nothing to free yet, and collecting would walk the heap the freeze just spared.
    """

    def __init__(self, *, collect_after: float = COLLECT_AFTER) -> None:
        self.lock = threading.Lock()
        self.collect_after = collect_after
        self.open = 0
        self.was_enabled = False
        self.frozen_at: float | None = None  # when the last large build was frozen

    def begin(self) -> None:
        with self.lock:
            if self.open == 0:
                self.was_enabled = gc.isenabled()
                since = time.monotonic() - self.frozen_at if self.frozen_at is not None else None
                if self.was_enabled and since is not None and since >= self.collect_after:
                    gc.unfreeze()  # what the last pause froze may be garbage now (a replaced index)
                    gc.collect()
                    self.frozen_at = None
                gc.disable()
            self.open += 1

    def end(self) -> None:
        with self.lock:
            self.open -= 1
            if self.open == 0 and self.was_enabled:
                if gc.get_count()[0] >= FREEZE_AFTER:
                    gc.freeze()
                    self.frozen_at = time.monotonic()
                gc.enable()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No cyclic garbage collection inside the block (pauses may nest and overlap across threads)."""
        self.begin()
        try:
            yield
        finally:
            self.end()


gc_paused = Pauses().paused  # the process's pauses: every load and index build shares them
