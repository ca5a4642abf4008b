"""Questions acknowledged and not answered yet: what answering one later needs, leased to one process.

An event that is a question claims with a `Hold` (bot/claims.py): its row is written in the claims'
transaction, before the platform is acknowledged; marked "posting" just before its answer is sent (so
that a post that may have gone out is never repeated); deleted (queued, like the question's record)
once the answer is posted. A process that dies before posting leaves the row. When its lease has
expired, a retry of the event takes it over (bot/group_commit.py), or `take_expired` hands it to one
process's sweeper (bot/pending.py), atomically: an UPDATE that only a row still expired matches, so two
replicas never both get it; the sweeper too marks it "posting" before it posts. A "posting" row found
expired is a post whose outcome is unknown (its process died while sending it): it is dropped rather
than posted again.

Privacy: the row holds the question, its language hint and where to post the answer (a conversation,
never who asked), under the keyed hash of its event's claim; it exists only until the answer is posted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update

from bot.database import pending_answers
from bot.group_commit import DELETE, UPDATE
from bot.store_base import StoreBase

log = logging.getLogger(__name__)

ANSWERING, POSTING = "answering", "posting"


@dataclass(frozen=True)
class PendingAnswer:
    """A question to answer that its process left unanswered. `key` is its claim's hashed key."""

    key: str
    platform: str
    reference: dict[str, Any]
    question: str
    lang_hint: str | None
    attempts: int  # how many times a sweeper has taken it (this one included)
    lease_until: datetime  # this sweeper's lease: `start_posting` checks the row is still its own


class PendingStore(StoreBase):
    async def posting(self, event_id: str) -> bool:
        """The answer to `event_id`'s question is about to be posted: from now on its outcome is
        unknown if this process dies, and nobody posts it again. Whether that was written."""
        values = {"claim_key": self.claim_key(event_id), "state": POSTING}
        return await self._writes.record_now(pending_answers, values, self._clock(), op=UPDATE)

    def answered(self, event_id: str) -> None:
        """The answer to `event_id`'s question was posted: delete its row (queued, after the answer)."""
        now = self._clock()
        self._writes.record(pending_answers, {"claim_key": self.claim_key(event_id)}, now, op=DELETE)

    async def renew(self, event_ids: Sequence[str], lease: timedelta) -> None:
        """Extend the lease of answers this process is still working on (a slow platform)."""
        keys = [self.claim_key(event_id) for event_id in event_ids]
        until = self._clock() + lease
        row = pending_answers.c

        def op(conn: Connection) -> None:
            conn.execute(update(pending_answers).where(row.claim_key.in_(keys)).values(lease_until=until))

        await self._run("renewing the lease of answers in progress", op)

    async def take_expired(self, lease: timedelta, *, limit: int = 20) -> tuple[list[PendingAnswer], int]:
        """Up to `limit` questions whose process died, leased to this process; and how many rows were
        dropped because a process died while posting them (outcome unknown)."""
        now = self._clock()
        row = pending_answers.c

        def op(conn: Connection) -> tuple[list[PendingAnswer], int]:
            unknown = conn.execute(
                delete(pending_answers).where(row.state == POSTING, row.lease_until <= now)
            )
            candidates = (
                conn.execute(
                    select(row.claim_key)
                    .where(row.state == ANSWERING, row.lease_until <= now)
                    .order_by(row.lease_until)
                    .limit(limit)
                )
            ).scalars()
            keys = list(candidates)
            if not keys:
                return [], int(unknown.rowcount)
            # Compare-and-set: a row another replica took meanwhile no longer matches the WHERE.
            taken = conn.execute(
                update(pending_answers)
                .where(row.claim_key.in_(keys), row.state == ANSWERING, row.lease_until <= now)
                .values(attempts=row.attempts + 1, lease_until=now + lease)
                .returning(
                    row.claim_key,
                    row.platform,
                    row.reference,
                    row.question,
                    row.lang_hint,
                    row.attempts,
                    row.lease_until,
                )
            )
            found = [PendingAnswer(*r) for r in taken]
            return found, int(unknown.rowcount)

        result: tuple[list[PendingAnswer], int] = await self._run("taking over unanswered questions", op)
        return result

    async def start_posting(self, pending: PendingAnswer) -> bool:
        """Mark a taken question "posting", if it is still this sweeper's (its lease unchanged): from
        now on, should this process die, nobody posts it again. False: another process has it."""
        row = pending_answers.c

        def op(conn: Connection) -> bool:
            marked = conn.execute(
                update(pending_answers)
                .where(
                    row.claim_key == pending.key,
                    row.state == ANSWERING,
                    row.lease_until == pending.lease_until,
                )
                .values(state=POSTING)
            )
            return bool(marked.rowcount)

        result: bool = await self._run("marking an answer as being posted", op)
        return result

    async def finish(self, key: str) -> None:
        """A taken question was posted (or its post's outcome is unknown, or it was refused): forget it."""

        def op(conn: Connection) -> None:
            conn.execute(delete(pending_answers).where(pending_answers.c.claim_key == key))

        await self._run("finishing an answer", op)

    async def try_later(self, key: str, after: timedelta) -> None:
        """A taken question could certainly not be posted: any sweeper may try it again `after` from now."""
        until = self._clock() + after

        def op(conn: Connection) -> None:
            conn.execute(
                update(pending_answers)
                .where(pending_answers.c.claim_key == key)
                .values(state=ANSWERING, lease_until=until)
            )

        await self._run("putting an answer back for later", op)

    async def pending_count(self) -> int:
        """How many questions are acknowledged and not answered yet (for tests and diagnostics)."""

        def op(conn: Connection) -> int:
            return len(conn.execute(select(pending_answers.c.claim_key)).all())

        result: int = await self._run("counting answers in progress", op)
        return result
