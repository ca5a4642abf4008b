"""Claiming an event once: a platform's retry, an edited mention or a relayed HR reply is acted on once.

`Claims` asks the store (every replica shares it), with a deadline: a platform waits only seconds for
its acknowledgement (Slack 3 s), so when the store is down or slow the claim falls back to this
process's own memory (`LocalClaims`) — a retry reaching this replica is still not answered twice.

A question's claim is "in progress" until its answer is posted: it claims with a `Hold` (what answering
it later needs), stored in the same round trip and leased to this process for `lease`; `posting`
marks it as its answer is sent (a post that may have gone out is never made again), `answered` deletes
it after the answer. Until then `renew` keeps the lease of the answers this process is working
on; if it dies, a retry of the event or a sweeper (bot/pending.py) answers it (bot/store_pending.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from bot.errors import PolicybotError

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = 1.0  # seconds the store may take before a platform's acknowledgement is at risk
DEFAULT_TTL = timedelta(hours=1)
AHEAD_KEEP = 60.0  # seconds a claim made ahead (see `Claims.claim`) waits for its caller to ask
DEFAULT_LEASE = timedelta(seconds=60)  # how long an answer in progress is this process's alone
# The longest this process keeps renewing the lease of an answer it is working on: one that takes longer
# is stuck (a bug, a hung request), and another process may answer it.
HOLD_MAX = 300.0
# Answers in progress being posted at once (see `Claims.sending`): a few Slack round trips' worth.
SENDS_AT_ONCE = 8


@dataclass(frozen=True)
class Hold:
    """What answering a question later needs: where to post (a conversation, never who asked), the
    question and its language hint."""

    platform: str
    reference: dict[str, Any] = field(repr=False)
    question: str = field(repr=False)
    lang_hint: str | None = None


class EventLog(Protocol):
    """Where claims are recorded for every replica (bot.store.Store)."""

    async def claim_event(self, event_id: str, *, ttl: timedelta = ...) -> bool: ...
    async def claim_events(
        self, claims: Sequence[tuple[str, timedelta]], *, hold: Hold | None = ..., lease: timedelta = ...
    ) -> list[bool]: ...
    async def posting(self, event_id: str) -> bool: ...
    def answered(self, event_id: str) -> None: ...
    async def renew(self, event_ids: Sequence[str], lease: timedelta) -> None: ...


class LocalClaims:
    """In-process record of claimed keys, for when there is no store or it does not answer in time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, limit: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._clock = clock
        self._limit = limit

    async def claim_event(self, event_id: str, *, ttl: timedelta = DEFAULT_TTL) -> bool:
        now = self._clock()
        while self._seen and (next(iter(self._seen.values())) <= now or len(self._seen) >= self._limit):
            self._seen.popitem(last=False)
        if event_id in self._seen:
            return False
        self._seen[event_id] = now + ttl.total_seconds()
        return True

    async def claim_events(self, claims: Sequence[tuple[str, timedelta]]) -> list[bool]:
        return [await self.claim_event(event_id, ttl=ttl) for event_id, ttl in claims]


class Claims:
    """True the first time a key is claimed (by any replica when the store answers), False after."""

    def __init__(
        self, store: EventLog | None, *, timeout: float = CLAIM_TIMEOUT, lease: timedelta = DEFAULT_LEASE
    ) -> None:
        self._store = store
        self._local = LocalClaims()
        self._timeout = timeout
        self.lease = lease
        self._ahead: OrderedDict[str, tuple[bool, float]] = OrderedDict()  # key -> (won, until)
        self._holding: dict[str, float] = {}  # keys whose answers this process is working on -> since
        self._sends = asyncio.Semaphore(SENDS_AT_ONCE)

    @property
    def holding(self) -> frozenset[str]:
        """The keys whose answers are in progress here (stored, leased to this process)."""
        return frozenset(self._holding)

    async def claim(
        self,
        key: str,
        ttl: timedelta = DEFAULT_TTL,
        *,
        ahead: Sequence[tuple[str, timedelta]] = (),
        hold: Hold | None = None,
    ) -> bool:
        """`ahead`: the claims the same event will need next (an @mention's message), made now in the
        same store round trip; their results wait here (AHEAD_KEEP seconds at most) for that `claim`.
        `hold`: the event is a question; answering it is in progress until `answered(key)`."""
        now = time.monotonic()
        known = self._ahead.pop(key, None)
        if known is not None and known[1] > now:
            return known[0]
        claims = [(key, ttl), *ahead]
        won, stored = await self._claim_all(claims, hold)
        if won[0] and hold is not None and stored:
            self._holding[key] = now
        if won[0]:  # a redelivery's (lost) claims wait for nobody
            while self._ahead and next(iter(self._ahead.values()))[1] <= now:
                self._ahead.popitem(last=False)
            for (later, _), result in zip(claims[1:], won[1:], strict=True):
                self._ahead[later] = (result, now + AHEAD_KEEP)
        return won[0]

    @contextlib.asynccontextmanager
    async def sending(self, key: str | None) -> AsyncIterator[None]:
        """Around the post of `key`'s answer: marked "posting" first (`posting`), and no more than
        SENDS_AT_ONCE such posts at a time, so that few are marked and not yet sent when a process dies
        (under a burst, posts queue for a connection: those are lost to a crash, not repeated)."""
        if key is None or key not in self._holding:
            yield
            return
        async with self._sends:
            await self.posting(key)
            yield

    async def posting(self, key: str) -> None:
        """`key`'s answer is about to be sent: should this process die from now on, it is not sent again
        by another. Waits for the store (its deadline at most: then the answer goes out regardless)."""
        if key not in self._holding or self._store is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                if await self._store.posting(key):
                    return
        except (PolicybotError, TimeoutError):
            pass
        log.warning("could not mark an answer as being posted; it is posted regardless")

    def answered(self, key: str) -> None:
        """The answer to `key`'s question is posted: its stored hold is deleted (after the answer)."""
        if key not in self._holding:
            return
        del self._holding[key]
        if self._store is not None:
            try:
                self._store.answered(key)
            except PolicybotError as exc:  # the store is closed: the sweeper will find it answered
                log.warning("could not mark an answer finished: %s", exc)

    async def renew(self) -> None:
        """Keep the leases of the answers this process is still working on (called by the sweeper)."""
        stuck = time.monotonic() - HOLD_MAX
        for key in [key for key, since in self._holding.items() if since < stuck]:
            log.error("an answer has been in progress for %.0f s; another process may answer it", HOLD_MAX)
            del self._holding[key]
        if self._store is not None and self._holding:
            await self._store.renew(sorted(self._holding), self.lease)

    async def _claim_all(
        self, claims: list[tuple[str, timedelta]], hold: Hold | None
    ) -> tuple[list[bool], bool]:
        """Whether each claim was won, and whether the hold may be in the store: it is when the store
        decided, and may be when it was too slow to (the write goes on, and may still win)."""
        if self._store is None:
            return await self._local.claim_events(claims), False
        try:
            async with asyncio.timeout(self._timeout):
                return await self._store.claim_events(claims, hold=hold, lease=self.lease), True
        except TimeoutError:
            log.warning("the store did not record an event within %.1f s; deduping in-process", self._timeout)
            return await self._local.claim_events(claims), True
        except PolicybotError as exc:
            log.warning("could not record an event in the store (%s); deduping in-process", exc)
            return await self._local.claim_events(claims), False
