"""The daily tips' bookkeeping: one row per target and slot, claimed once, sent by one replica.

Only bot/tips.py uses it; the life of a post (PENDING → SENDING → POSTED/FAILED/UNKNOWN) is told there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Select, and_, func, select, update

from bot.database import dialect_insert, tip_posts
from bot.store_base import StoreBase


class TipStatus(StrEnum):
    """The life of one tip post. Only PENDING rows are ever (re)sent; see bot/tips.py for why."""

    PENDING = "pending"  # claimed, not in flight: due at next_attempt_at
    SENDING = "sending"  # one replica is delivering it right now
    POSTED = "posted"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the sender vanished mid-send; it may or may not have arrived, never re-sent


@dataclass(frozen=True)
class TipPost:
    id: int
    platform: str
    target_id: str
    lang: str
    day: date
    slot: str
    tip_id: str
    cycle: int
    status: TipStatus
    attempts: int
    claimed_by: str
    claimed_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None
    error: str | None


def _tip_post(row: Any) -> TipPost:
    return TipPost(
        id=row.id,
        platform=row.platform,
        target_id=row.target_id,
        lang=row.lang,
        day=row.day,
        slot=row.slot,
        tip_id=row.tip_id,
        cycle=row.cycle,
        status=TipStatus(row.status),
        attempts=row.attempts,
        claimed_by=row.claimed_by,
        claimed_at=row.claimed_at,
        updated_at=row.updated_at,
        next_attempt_at=row.next_attempt_at,
        error=row.error,
    )


def _slot(platform: str, target_id: str, slot: str) -> Select[Any]:
    """The one tip post of a slot (a day's tip to one channel or conversation)."""
    return select(tip_posts).where(
        tip_posts.c.platform == platform,
        tip_posts.c.target_id == target_id,
        tip_posts.c.slot == slot,
    )


class TipStore(StoreBase):
    async def tip_history(self, platform: str, target_id: str) -> list[TipPost]:
        """Every tip post for one target, oldest first."""

        def op(conn: Connection) -> list[TipPost]:
            rows = conn.execute(
                select(tip_posts)
                .where(tip_posts.c.platform == platform, tip_posts.c.target_id == target_id)
                .order_by(tip_posts.c.claimed_at, tip_posts.c.id)
            )
            return [_tip_post(r) for r in rows]

        result: list[TipPost] = await self._run("reading tip history", op)
        return result

    async def tip_posts(self, *, day: date | None = None) -> list[TipPost]:
        def op(conn: Connection) -> list[TipPost]:
            query = select(tip_posts).order_by(tip_posts.c.claimed_at, tip_posts.c.id)
            if day is not None:
                query = query.where(tip_posts.c.day == day)
            return [_tip_post(r) for r in conn.execute(query)]

        result: list[TipPost] = await self._run("reading tip posts", op)
        return result

    async def claim_tip(
        self,
        *,
        platform: str,
        target_id: str,
        lang: str,
        day: date,
        slot: str,
        tip_id: str,
        cycle: int,
        by: str,
        now: datetime,
    ) -> TipPost | None:
        """Claim a target's slot (a day) for one tip; None if another replica claimed it first.

        The claim is PENDING and due at once; sending it is a separate step (`begin_send`).
        """

        def op(conn: Connection) -> TipPost | None:
            inserted = conn.execute(
                dialect_insert(conn, tip_posts)
                .values(
                    platform=platform,
                    target_id=target_id,
                    lang=lang,
                    day=day,
                    slot=slot,
                    tip_id=tip_id,
                    cycle=cycle,
                    status=TipStatus.PENDING.value,
                    attempts=0,
                    claimed_by=by,
                    claimed_at=now,
                    updated_at=now,
                    next_attempt_at=now,
                )
                .on_conflict_do_nothing(index_elements=["platform", "target_id", "slot"])
            )
            if inserted.rowcount != 1:
                return None
            row = conn.execute(_slot(platform, target_id, slot)).one()
            return _tip_post(row)

        result: TipPost | None = await self._run("claiming a tip", op)
        return result

    async def tip_slot(self, platform: str, target_id: str, slot: str) -> TipPost | None:
        def op(conn: Connection) -> TipPost | None:
            row = conn.execute(_slot(platform, target_id, slot)).one_or_none()
            return None if row is None else _tip_post(row)

        result: TipPost | None = await self._run("reading a tip slot", op)
        return result

    async def due_tips(self, now: datetime) -> list[TipPost]:
        """PENDING tips whose (next) attempt is due."""

        def op(conn: Connection) -> list[TipPost]:
            rows = conn.execute(
                select(tip_posts)
                .where(tip_posts.c.status == TipStatus.PENDING.value, tip_posts.c.next_attempt_at <= now)
                .order_by(tip_posts.c.next_attempt_at, tip_posts.c.id)
            )
            return [_tip_post(r) for r in rows]

        result: list[TipPost] = await self._run("reading due tips", op)
        return result

    async def next_tip_attempt(self, *, platforms: Iterable[str] | None = None) -> datetime | None:
        """When the earliest PENDING tip is due, if any (the scheduler sleeps until then); only on
        `platforms` when given — a replica waking for a row it cannot send would wake at once, forever."""

        wanted = None if platforms is None else list(platforms)

        def op(conn: Connection) -> datetime | None:
            query = select(func.min(tip_posts.c.next_attempt_at)).where(
                tip_posts.c.status == TipStatus.PENDING.value
            )
            if wanted is not None:
                query = query.where(tip_posts.c.platform.in_(wanted))
            value = conn.execute(query).scalar_one()
            return value  # type: ignore[no-any-return]  # min() keeps the column's UTCDateTime type

        result: datetime | None = await self._run("reading the next tip attempt", op)
        return result

    async def begin_send(self, post_id: int, *, by: str, now: datetime) -> TipPost | None:
        """Atomically move a due PENDING tip to SENDING for `by`; None if someone else got there first.

        This compare-and-set is the only way into SENDING, so at most one replica sends each attempt.
        """

        def op(conn: Connection) -> TipPost | None:
            moved = conn.execute(
                update(tip_posts)
                .where(
                    tip_posts.c.id == post_id,
                    tip_posts.c.status == TipStatus.PENDING.value,
                    tip_posts.c.next_attempt_at <= now,
                )
                .values(
                    status=TipStatus.SENDING.value,
                    attempts=tip_posts.c.attempts + 1,
                    claimed_by=by,
                    updated_at=now,
                    next_attempt_at=None,
                )
            )
            if moved.rowcount != 1:
                return None
            return _tip_post(conn.execute(select(tip_posts).where(tip_posts.c.id == post_id)).one())

        result: TipPost | None = await self._run("starting a tip send", op)
        return result

    async def finish_send(
        self,
        post_id: int,
        *,
        by: str,
        status: TipStatus,
        now: datetime,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        """Record how a send ended (POSTED, FAILED, or PENDING again for a retry). Only the replica
        that began the send may finish it; False if the row was taken from it meanwhile."""
        if status is TipStatus.PENDING and next_attempt_at is None:
            raise ValueError("a tip put back to PENDING needs next_attempt_at")

        def op(conn: Connection) -> bool:
            done = conn.execute(
                update(tip_posts)
                .where(
                    tip_posts.c.id == post_id,
                    tip_posts.c.status == TipStatus.SENDING.value,
                    tip_posts.c.claimed_by == by,
                )
                .values(status=status.value, updated_at=now, error=error, next_attempt_at=next_attempt_at)
            )
            return bool(done.rowcount == 1)

        result: bool = await self._run("recording a tip send", op)
        return result

    async def expire_tips(self, *, stale_before: datetime, today: date, now: datetime) -> Sequence[int]:
        """Settle tips nobody will finish: SENDING since before `stale_before` (its sender died
        mid-send) becomes UNKNOWN; PENDING from a day before `today` becomes FAILED. Returns the ids."""

        def op(conn: Connection) -> list[int]:
            stale = and_(tip_posts.c.status == TipStatus.SENDING.value, tip_posts.c.updated_at < stale_before)
            ids = [r.id for r in conn.execute(select(tip_posts.c.id).where(stale))]
            conn.execute(
                update(tip_posts)
                .where(stale)
                .values(
                    status=TipStatus.UNKNOWN.value,
                    updated_at=now,
                    error="the sender stopped mid-send; not re-sent, to never post twice",
                )
            )
            overdue = and_(tip_posts.c.status == TipStatus.PENDING.value, tip_posts.c.day < today)
            ids += [r.id for r in conn.execute(select(tip_posts.c.id).where(overdue))]
            conn.execute(
                update(tip_posts)
                .where(overdue)
                .values(
                    status=TipStatus.FAILED.value,
                    updated_at=now,
                    next_attempt_at=None,
                    error=func.coalesce(tip_posts.c.error, "") + " (gave up: the day is over)",
                )
            )
            return ids

        result: list[int] = await self._run("settling abandoned tips", op)
        return result
