"""Claimed event ids: a platform's retry, an edited mention or a relayed reply is acted on once.

bot/claims.py puts a deadline and an in-process fallback around `claim_event`.
"""

from __future__ import annotations

from datetime import timedelta

from bot.database import processed_events
from bot.store_base import StoreBase


class EventStore(StoreBase):
    async def claim_event(self, event_id: str, *, ttl: timedelta = timedelta(hours=1)) -> bool:
        """True the first time `event_id` is seen by any replica; False for a retry of it.

        Written with other callers' claims and records in one transaction (see `GroupCommit`).
        """
        now = self._clock()
        return await self._writes.write(
            processed_events, {"event_id": event_id, "expires_at": now + ttl}, now
        )
