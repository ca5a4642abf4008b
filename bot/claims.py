"""Claiming an event once: a platform's retry, an edited mention or a relayed HR reply is acted on once.

`Claims` asks the store (every replica shares it), with a deadline: a platform waits only seconds for
its acknowledgement (Slack 3 s), so when the store is down or slow the claim falls back to this
process's own memory (`LocalClaims`) — a retry reaching this replica is still not answered twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol

from bot.errors import PolicybotError

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = 1.0  # seconds the store may take before a platform's acknowledgement is at risk
DEFAULT_TTL = timedelta(hours=1)
AHEAD_KEEP = 60.0  # seconds a claim made ahead (see `Claims.claim`) waits for its caller to ask


class EventLog(Protocol):
    """Where claims are recorded for every replica (bot.store.Store)."""

    async def claim_event(self, event_id: str, *, ttl: timedelta = ...) -> bool: ...
    async def claim_events(self, claims: Sequence[tuple[str, timedelta]]) -> list[bool]: ...


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

    def __init__(self, store: EventLog | None, *, timeout: float = CLAIM_TIMEOUT) -> None:
        self._store = store
        self._local = LocalClaims()
        self._timeout = timeout
        self._ahead: OrderedDict[str, tuple[bool, float]] = OrderedDict()  # key -> (won, until)

    async def claim(
        self, key: str, ttl: timedelta = DEFAULT_TTL, *, ahead: Sequence[tuple[str, timedelta]] = ()
    ) -> bool:
        """`ahead`: the claims the same event will need next (an @mention's message), made now in the
        same store round trip; their results wait here (AHEAD_KEEP seconds at most) for that `claim`."""
        now = time.monotonic()
        known = self._ahead.pop(key, None)
        if known is not None and known[1] > now:
            return known[0]
        claims = [(key, ttl), *ahead]
        won = await self._claim_all(claims)
        if won[0]:  # a redelivery's (lost) claims wait for nobody
            while self._ahead and next(iter(self._ahead.values()))[1] <= now:
                self._ahead.popitem(last=False)
            for (later, _), result in zip(claims[1:], won[1:], strict=True):
                self._ahead[later] = (result, now + AHEAD_KEEP)
        return won[0]

    async def _claim_all(self, claims: list[tuple[str, timedelta]]) -> list[bool]:
        if self._store is None:
            return await self._local.claim_events(claims)
        try:
            async with asyncio.timeout(self._timeout):
                return await self._store.claim_events(claims)
        except (PolicybotError, TimeoutError) as exc:
            log.warning("could not record event %s in the store (%s); deduping in-process", claims[0][0], exc)
            return await self._local.claim_events(claims)
