"""What the bot remembers across restarts and shares between replicas: the `Store` and its records.

Slack event ids already handled, Teams conversation references, what HR learns from (questions,
feedback, picked suggestions), the daily tips' bookkeeping and the "Ask HR" reply routes. How it talks to
the database (tables, engine, migrations, the group commit of the per-message writes) is bot/database.py.

Privacy: questions and suggestion picks are stored with their text (masked: `bot.privacy.mask`), language
and time only — never with who asked — and deleted after `retention_days`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, and_, delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.conversation import Recorder, ReplyKind
from bot.database import (
    conversation_references,
    create_engine,
    create_sqlite_write_engine,
    dialect_insert,
    escalation_routes,
    feedback,
    migrate,
    processed_events,
    questions,
    suggestion_picks,
    tip_posts,
)
from bot.errors import StoreError
from bot.group_commit import Batch, GroupCommit, SQLiteWriter
from bot.privacy import mask

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _store_error(what: str, exc: Exception) -> StoreError:
    if isinstance(exc, OSError):
        return StoreError(f"could not reach the database while {what}: {exc}")
    return StoreError(f"database error while {what}: {exc}")


@dataclass(frozen=True)
class LoggedQuestion:
    """One recorded question, as HR's report reads it (no identity: there is none to read)."""

    asked_at: datetime
    question: str
    lang: str
    outcome: str  # a ReplyKind value: "answer", "suggestions" or "fallback"
    entry_id: str | None  # the entry answered, or the matcher's best guess
    confidence: float


@dataclass(frozen=True)
class LoggedPick:
    """A "did you mean" suggestion someone picked: `question` is a candidate example for `entry_id`."""

    at: datetime
    question: str
    entry_id: str
    lang: str


@dataclass(frozen=True)
class EscalationRoute:
    """How to reach the employee behind an "Ask HR" thread (see `escalation_routes`)."""

    platform: str
    thread_id: str
    route: dict[str, Any]
    lang: str


@dataclass(frozen=True)
class StoredReference:
    """Where the bot can post unprompted: a Teams conversation reference (as Bot Framework JSON)."""

    platform: str
    conversation_id: str
    reference: dict[str, Any]
    lang: str

    @property
    def personal(self) -> bool:
        """A one-to-one chat: its id points at one person, so tips name it only hashed (see
        `bot.tips.Target.label`).

        As adapters/teams.py decides (a missing `conversationType` is a personal chat, as Bot Framework
        leaves it out there), and whatever the type, an id in the personal-chat form `a:...`. In doubt,
        personal: a channel named by hash is harmless, a person named in a log is not.
        """
        conversation = self.reference.get("conversation")
        if not isinstance(conversation, dict):
            return True
        kind = conversation.get("conversationType")
        return kind in (None, "", "personal") or self.conversation_id.startswith("a:")


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


class Store(Recorder):
    """The database, behind the few operations the bot needs. Create it with `await Store.open(url)`."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        retention_days: int,
        clock: Callable[[], datetime],
        tz: tzinfo = UTC,
        writer: SQLiteWriter | None = None,
    ) -> None:
        self._engine = engine
        self.retention_days = retention_days
        self._clock = clock
        self.tz = tz  # the local time zone: a vote is dated by the day it was given there
        self._writer = writer  # SQLite: the group commit's own thread and connection
        self._writes = GroupCommit(self._run_batch)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        retention_days: int = 90,
        clock: Callable[[], datetime] = utcnow,
        tz: tzinfo = UTC,
    ) -> Store:
        """Open (and migrate) the database. `tz` dates the feedback votes: the report's `since` is a
        local day, so a vote at 00:30 in Oslo must count for that Oslo day, not the UTC one before."""
        engine = create_engine(url)
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        writer = SQLiteWriter(create_sqlite_write_engine(url)) if engine.dialect.name == "sqlite" else None
        return cls(engine, retention_days=retention_days, clock=clock, tz=tz, writer=writer)

    async def close(self) -> None:
        """Write everything still queued, then release the database connections."""
        try:
            await self._writes.close()
        finally:
            try:
                if self._writer is not None:
                    await self._writer.close()
            finally:
                await self._engine.dispose()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine (for diagnostics: e.g. counting transactions with an event listener)."""
        return self._engine

    @property
    def write_engine(self) -> Engine:
        """The engine the group commit's transactions begin on (for diagnostics, like `engine`)."""
        return self._writer.engine if self._writer is not None else self._engine.sync_engine

    async def _run(self, what: str, operation: Callable[[AsyncConnection], Any]) -> Any:
        """Run `operation` in one transaction, after the records still queued (so reads see them);
        database trouble becomes a StoreError."""
        if self._writes.unwritten_records:
            await self._writes.flush()
        try:
            async with self._engine.begin() as conn:
                return await operation(conn)
        except (SQLAlchemyError, OSError) as exc:
            raise _store_error(what, exc) from exc

    async def _run_batch(self, what: str, batch: Batch[Any]) -> Any:
        """Run a group-commit batch in one transaction: one thread hop on SQLite (see SQLiteWriter)."""
        try:
            if self._writer is not None:
                return await self._writer.run(batch)
            async with self._engine.begin() as conn:
                return await conn.run_sync(batch)
        except (SQLAlchemyError, OSError) as exc:
            raise _store_error(what, exc) from exc

    # -- Slack event dedupe ------------------------------------------------------------------------

    async def claim_event(self, event_id: str, *, ttl: timedelta = timedelta(hours=1)) -> bool:
        """True the first time `event_id` is seen by any replica; False for a retry of it.

        Written with other callers' claims and records in one transaction (see bot/group_commit.py).
        """
        return (await self.claim_events([(event_id, ttl)]))[0]

    async def claim_events(self, claims: Sequence[tuple[str, timedelta]]) -> list[bool]:
        """`claim_event` for several (id, ttl) at once, in one transaction: whether each was won."""
        now = self._clock()
        return await self._writes.claim_many(
            [{"event_id": event_id, "expires_at": now + ttl} for event_id, ttl in claims], now
        )

    # -- conversation references (Teams) -------------------------------------------------------------

    async def save_reference(
        self, platform: str, conversation_id: str, reference: dict[str, Any], lang: str
    ) -> None:
        now = self._clock()

        async def op(conn: AsyncConnection) -> None:
            stmt = dialect_insert(conn, conversation_references).values(
                platform=platform,
                conversation_id=conversation_id,
                reference=reference,
                lang=lang,
                updated_at=now,
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["platform", "conversation_id"],
                    set_={
                        "reference": stmt.excluded.reference,
                        "lang": stmt.excluded.lang,
                        "updated_at": now,
                    },
                )
            )

        await self._run("saving a conversation reference", op)

    async def remove_reference(self, platform: str, conversation_id: str) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(
                delete(conversation_references).where(
                    conversation_references.c.platform == platform,
                    conversation_references.c.conversation_id == conversation_id,
                )
            )

        await self._run("removing a conversation reference", op)

    async def references(self, platform: str) -> list[StoredReference]:
        async def op(conn: AsyncConnection) -> list[StoredReference]:
            rows = await conn.execute(
                select(conversation_references)
                .where(conversation_references.c.platform == platform)
                .order_by(conversation_references.c.conversation_id)
            )
            return [StoredReference(r.platform, r.conversation_id, dict(r.reference), r.lang) for r in rows]

        result: list[StoredReference] = await self._run("reading conversation references", op)
        return result

    # -- what HR learns from (Recorder) ----------------------------------------------------------------
    # Queued, not awaited: written with the next claims' transaction or within a second (bot/group_commit.py),
    # after the answer they belong to; every read below sees them, and `close` writes what is left.

    async def record_question(
        self, question: str, lang: str, outcome: ReplyKind, entry_id: str | None, confidence: float
    ) -> None:
        now = self._clock()
        values = {
            "asked_at": now,
            "question": mask(question),
            "lang": lang,
            "outcome": str(outcome),
            "entry_id": entry_id,
            "confidence": confidence,
        }
        self._writes.record(questions, values, now)

    async def record_feedback(self, entry_id: str, helpful: bool) -> None:
        now = self._clock()
        day = now.astimezone(self.tz).date()
        self._writes.record(feedback, {"entry_id": entry_id, "helpful": helpful, "day": day}, now)

    async def record_suggestion_pick(self, question: str, entry_id: str, lang: str) -> None:
        now = self._clock()
        values = {"at": now, "question": mask(question), "entry_id": entry_id, "lang": lang}
        self._writes.record(suggestion_picks, values, now)

    async def feedback_counts(self, *, since: date | None = None) -> dict[str, tuple[int, int]]:
        """entry id -> (helpful votes, unhelpful votes), counting votes given on or after `since`."""

        async def op(conn: AsyncConnection) -> dict[str, tuple[int, int]]:
            query = (
                select(feedback.c.entry_id, feedback.c.helpful, func.count())
                .group_by(feedback.c.entry_id, feedback.c.helpful)
                .order_by(feedback.c.entry_id)
            )
            if since is not None:
                query = query.where(feedback.c.day >= since)
            counts: dict[str, tuple[int, int]] = {}
            for entry_id, helpful, n in await conn.execute(query):
                yes, no = counts.get(entry_id, (0, 0))
                counts[entry_id] = (yes + n, no) if helpful else (yes, no + n)
            return counts

        result: dict[str, tuple[int, int]] = await self._run("counting feedback", op)
        return result

    async def questions(self, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Recorded questions, newest first (for HR's reports)."""

        async def op(conn: AsyncConnection) -> list[dict[str, Any]]:
            rows = await conn.execute(
                select(questions).order_by(questions.c.asked_at.desc(), questions.c.id.desc()).limit(limit)
            )
            return [dict(r._mapping) for r in rows]

        result: list[dict[str, Any]] = await self._run("reading questions", op)
        return result

    async def suggestion_picks(self) -> list[dict[str, Any]]:
        async def op(conn: AsyncConnection) -> list[dict[str, Any]]:
            rows = await conn.execute(select(suggestion_picks).order_by(suggestion_picks.c.at))
            return [dict(r._mapping) for r in rows]

        result: list[dict[str, Any]] = await self._run("reading suggestion picks", op)
        return result

    async def purge(self) -> int:
        """Delete questions and suggestion picks older than the retention, and expired event ids.

        Returns how many questions and picks were deleted.
        """
        now = self._clock()
        horizon = now - timedelta(days=self.retention_days)

        async def op(conn: AsyncConnection) -> int:
            gone_questions = await conn.execute(delete(questions).where(questions.c.asked_at < horizon))
            gone_picks = await conn.execute(delete(suggestion_picks).where(suggestion_picks.c.at < horizon))
            await conn.execute(delete(processed_events).where(processed_events.c.expires_at <= now))
            await conn.execute(delete(escalation_routes).where(escalation_routes.c.expires_at <= now))
            return int(gone_questions.rowcount) + int(gone_picks.rowcount)

        purged: int = await self._run("purging old questions", op)
        if purged:
            log.info("purged %d question record(s) older than %d days", purged, self.retention_days)
        return purged

    # -- tips bookkeeping (used by bot/tips.py) ---------------------------------------------------------

    async def tip_history(self, platform: str, target_id: str) -> list[TipPost]:
        """Every tip post for one target, oldest first."""

        async def op(conn: AsyncConnection) -> list[TipPost]:
            rows = await conn.execute(
                select(tip_posts)
                .where(tip_posts.c.platform == platform, tip_posts.c.target_id == target_id)
                .order_by(tip_posts.c.claimed_at, tip_posts.c.id)
            )
            return [_tip_post(r) for r in rows]

        result: list[TipPost] = await self._run("reading tip history", op)
        return result

    async def tip_posts(self, *, day: date | None = None) -> list[TipPost]:
        async def op(conn: AsyncConnection) -> list[TipPost]:
            query = select(tip_posts).order_by(tip_posts.c.claimed_at, tip_posts.c.id)
            if day is not None:
                query = query.where(tip_posts.c.day == day)
            return [_tip_post(r) for r in await conn.execute(query)]

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

        async def op(conn: AsyncConnection) -> TipPost | None:
            inserted = await conn.execute(
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
            row = (
                await conn.execute(
                    select(tip_posts).where(
                        tip_posts.c.platform == platform,
                        tip_posts.c.target_id == target_id,
                        tip_posts.c.slot == slot,
                    )
                )
            ).one()
            return _tip_post(row)

        result: TipPost | None = await self._run("claiming a tip", op)
        return result

    async def tip_slot(self, platform: str, target_id: str, slot: str) -> TipPost | None:
        async def op(conn: AsyncConnection) -> TipPost | None:
            row = (
                await conn.execute(
                    select(tip_posts).where(
                        tip_posts.c.platform == platform,
                        tip_posts.c.target_id == target_id,
                        tip_posts.c.slot == slot,
                    )
                )
            ).one_or_none()
            return None if row is None else _tip_post(row)

        result: TipPost | None = await self._run("reading a tip slot", op)
        return result

    async def due_tips(self, now: datetime) -> list[TipPost]:
        """PENDING tips whose (next) attempt is due."""

        async def op(conn: AsyncConnection) -> list[TipPost]:
            rows = await conn.execute(
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

        async def op(conn: AsyncConnection) -> datetime | None:
            query = select(func.min(tip_posts.c.next_attempt_at)).where(
                tip_posts.c.status == TipStatus.PENDING.value
            )
            if wanted is not None:
                query = query.where(tip_posts.c.platform.in_(wanted))
            value = (await conn.execute(query)).scalar_one()
            return value  # type: ignore[no-any-return]  # min() keeps the column's UTCDateTime type

        result: datetime | None = await self._run("reading the next tip attempt", op)
        return result

    async def begin_send(self, post_id: int, *, by: str, now: datetime) -> TipPost | None:
        """Atomically move a due PENDING tip to SENDING for `by`; None if someone else got there first.

        This compare-and-set is the only way into SENDING, so at most one replica sends each attempt.
        """

        async def op(conn: AsyncConnection) -> TipPost | None:
            moved = await conn.execute(
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
            return _tip_post((await conn.execute(select(tip_posts).where(tip_posts.c.id == post_id))).one())

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

        async def op(conn: AsyncConnection) -> bool:
            done = await conn.execute(
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

        async def op(conn: AsyncConnection) -> list[int]:
            stale = and_(tip_posts.c.status == TipStatus.SENDING.value, tip_posts.c.updated_at < stale_before)
            ids = [r.id for r in await conn.execute(select(tip_posts.c.id).where(stale))]
            await conn.execute(
                update(tip_posts)
                .where(stale)
                .values(
                    status=TipStatus.UNKNOWN.value,
                    updated_at=now,
                    error="the sender stopped mid-send; not re-sent, to never post twice",
                )
            )
            overdue = and_(tip_posts.c.status == TipStatus.PENDING.value, tip_posts.c.day < today)
            ids += [r.id for r in await conn.execute(select(tip_posts.c.id).where(overdue))]
            await conn.execute(
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

    # -- HR insights: reads for bot/report.py ------------------------------------------------------------

    async def question_log(self, *, since: datetime | None = None) -> list[LoggedQuestion]:
        """Every recorded question asked at or after `since`, oldest first."""

        async def op(conn: AsyncConnection) -> list[LoggedQuestion]:
            query = select(questions).order_by(questions.c.asked_at, questions.c.id)
            if since is not None:
                query = query.where(questions.c.asked_at >= since)
            return [
                LoggedQuestion(r.asked_at, r.question, r.lang, r.outcome, r.entry_id, r.confidence)
                for r in await conn.execute(query)
            ]

        result: list[LoggedQuestion] = await self._run("reading the question log", op)
        return result

    async def pick_log(self, *, since: datetime | None = None) -> list[LoggedPick]:
        """Every picked "did you mean" suggestion at or after `since`, oldest first."""

        async def op(conn: AsyncConnection) -> list[LoggedPick]:
            query = select(suggestion_picks).order_by(suggestion_picks.c.at, suggestion_picks.c.id)
            if since is not None:
                query = query.where(suggestion_picks.c.at >= since)
            return [LoggedPick(r.at, r.question, r.entry_id, r.lang) for r in await conn.execute(query)]

        result: list[LoggedPick] = await self._run("reading suggestion picks", op)
        return result

    # -- "Ask HR" reply relay ---------------------------------------------------------------------------

    async def save_escalation(
        self,
        platform: str,
        thread_id: str,
        route: dict[str, Any],
        lang: str,
        *,
        ttl: timedelta = timedelta(days=30),
    ) -> None:
        """Remember how to reach the employee whose question HR got in thread `thread_id`."""
        expires_at = self._clock() + ttl

        async def op(conn: AsyncConnection) -> None:
            stmt = dialect_insert(conn, escalation_routes).values(
                platform=platform, thread_id=thread_id, route=route, lang=lang, expires_at=expires_at
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["platform", "thread_id"],
                    set_={"route": stmt.excluded.route, "lang": stmt.excluded.lang, "expires_at": expires_at},
                )
            )

        await self._run("saving an escalation route", op)

    async def escalation(self, platform: str, thread_id: str) -> EscalationRoute | None:
        """The route for an HR thread, or None when it is not an escalation (or has expired)."""
        now = self._clock()

        async def op(conn: AsyncConnection) -> EscalationRoute | None:
            row = (
                await conn.execute(
                    select(escalation_routes).where(
                        escalation_routes.c.platform == platform,
                        escalation_routes.c.thread_id == thread_id,
                        escalation_routes.c.expires_at > now,
                    )
                )
            ).one_or_none()
            if row is None:
                return None
            return EscalationRoute(row.platform, row.thread_id, dict(row.route), row.lang)

        result: EscalationRoute | None = await self._run("reading an escalation route", op)
        return result
