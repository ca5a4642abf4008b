"""Claimed event ids: a platform's retry, an edited mention or a relayed reply is acted on once.

bot/claims.py puts a deadline and an in-process fallback around `claim_event`.

Privacy: an id is stored as a keyed hash (`claim_key`), never as the platform gave it — a Slack
mention's key names its channel and timestamp, a Teams one the person's chat — and its expiry is rounded
up to the hour, so that neither can be joined to a recorded question (whose `asked_at` it would mirror).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.store_base import StoreBase

if TYPE_CHECKING:
    from bot.claims import Hold

HOUR = timedelta(hours=1)


def hour_up(moment: datetime) -> datetime:
    """`moment`, rounded up to the next full hour (unchanged if it is one)."""
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + HOUR


class EventStore(StoreBase):
    async def claim_event(self, event_id: str, *, ttl: timedelta = timedelta(hours=1)) -> bool:
        """True the first time `event_id` is seen by any replica; False for a retry of it.

        Written with other callers' claims and records in one transaction (see bot/group_commit.py).
        """
        return (await self.claim_events([(event_id, ttl)]))[0]

    async def claim_events(
        self,
        claims: Sequence[tuple[str, timedelta]],
        *,
        hold: Hold | None = None,
        lease: timedelta = timedelta(minutes=1),
    ) -> list[bool]:
        """`claim_event` for several (id, ttl) at once, in one transaction: whether each was won.

        `hold`: the first id's event is a question to answer. Its pending answer is stored in the same
        transaction, leased to this process for `lease` (bot/store_pending.py); a retry of an event whose
        answer is pending with an expired lease wins, with the rest of its claims.
        """
        now = self._clock()
        rows = [
            {"event_id": self.claim_key(event_id), "expires_at": hour_up(now + ttl)}
            for event_id, ttl in claims
        ]
        pending = None
        if hold is not None:
            pending = {
                "platform": hold.platform,
                "reference": hold.reference,
                "question": hold.question,
                "lang_hint": hold.lang_hint,
                "state": "answering",
                "attempts": 0,
                "lease_until": now + lease,
            }
        return await self._writes.claim_many(rows, now, hold=pending)
