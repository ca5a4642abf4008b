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
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from bot.errors import PolicybotError

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = 1.0  # seconds the store may take before a platform's acknowledgement is at risk
DEFAULT_TTL = timedelta(hours=1)


class EventLog(Protocol):
    """Where claims are recorded for every replica (bot.store.Store)."""

    async def claim_event(self, event_id: str, *, ttl: timedelta = ...) -> bool: ...


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


class Claims:
    """True the first time a key is claimed (by any replica when the store answers), False after."""

    def __init__(self, store: EventLog | None, *, timeout: float = CLAIM_TIMEOUT) -> None:
        self._store = store
        self._local = LocalClaims()
        self._timeout = timeout

    async def claim(self, key: str, ttl: timedelta = DEFAULT_TTL) -> bool:
        if self._store is None:
            return await self._local.claim_event(key, ttl=ttl)
        try:
            async with asyncio.timeout(self._timeout):
                return await self._store.claim_event(key, ttl=ttl)
        except (PolicybotError, TimeoutError) as exc:
            log.warning("could not record event %s in the store (%s); deduping in-process", key, exc)
            return await self._local.claim_event(key, ttl=ttl)
