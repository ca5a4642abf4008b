"""Persistence for everything the bot must remember across restarts and share between replicas.

One SQLAlchemy (async) store on an SQLite file by default, PostgreSQL when `DATABASE_URL` points at one.
The schema is owned by the Alembic migrations in `bot/migrations`, applied by `Store.open` (and by
`policybot db upgrade`); concurrent replicas starting at once serialise on a lock, so the second one
finds the schema already at head.

Privacy: questions and suggestion picks are stored with their text, language and time only — never with
who asked — and deleted after `retention_days`.

The writes on every message's path (event-id claims, questions, feedback, suggestion picks) go through a
group commit (`_GroupCommit`): whatever is queued while one transaction runs is written by the next one,
a single transaction for many callers, so the database round trips stop growing with the message rate.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Dialect,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from bot.config import normalise_database_url
from bot.conversation import Recorder, ReplyKind
from bot.errors import StoreError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant will do, as long as every replica uses the same one: pg_advisory_xact_lock takes a bigint.
MIGRATION_LOCK_KEY = 0x706F6C6963790001
# Most writes one group-commit transaction takes; keeps statements far below SQLite's and PostgreSQL's
# bound-parameter limits (32766 / 32767) and one transaction short.
MAX_BATCH = 200


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps go in as aware datetimes and are stored as naive UTC, identically on SQLite and
    PostgreSQL, so comparisons in SQL mean the same thing on both."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware one (UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

conversation_references = Table(
    "conversation_references",
    metadata,
    Column("platform", String(32), primary_key=True),
    Column("conversation_id", String(512), primary_key=True),
    Column("reference", JSON(), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entry_id", String(255), nullable=False, index=True),
    Column("helpful", Boolean(), nullable=False),
    Column("day", Date(), nullable=False),
)

questions = Table(
    "questions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asked_at", UTCDateTime(), nullable=False, index=True),
    Column("question", Text(), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("entry_id", String(255), nullable=True),
    Column("confidence", Float(), nullable=False),
)

suggestion_picks = Table(
    "suggestion_picks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("question", Text(), nullable=False),
    Column("entry_id", String(255), nullable=False),
    Column("lang", String(8), nullable=False),
)

tip_posts = Table(
    "tip_posts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", String(32), nullable=False),
    Column("target_id", String(512), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("day", Date(), nullable=False),
    Column("slot", String(64), nullable=False),
    Column("tip_id", String(255), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    Column("claimed_by", String(64), nullable=False),
    Column("claimed_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("error", Text(), nullable=True),
    # The exactly-once guarantee: one row per target and slot, whichever replica inserts it first.
    UniqueConstraint("platform", "target_id", "slot", name="uq_tip_posts_target_slot"),
)

# "Ask HR" threads: where to relay HR's reply. Only the route to the employee (their Slack user id, or a
# Teams conversation reference), never what they asked: that is in HR's channel, by their consent.
escalation_routes = Table(
    "escalation_routes",
    metadata,
    Column("platform", String(32), primary_key=True),
    Column("thread_id", String(512), primary_key=True),  # Slack "channel:ts"; Teams "19:…;messageid=…"
    Column("route", JSON(), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)


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


def engine_url(url: str) -> tuple[URL, dict[str, Any]]:
    """The SQLAlchemy URL and driver arguments for a DATABASE_URL as hosting platforms write it.

    asyncpg takes no libpq query parameters, so `sslmode=` becomes asyncpg's `ssl=` and libpq
    `options=-c name=value …` become server settings (e.g. `options=-csearch_path%3Dpolicybot`).
    """
    parsed = make_url(normalise_database_url(url))
    connect_args: dict[str, Any] = {}
    if parsed.drivername == "postgresql+asyncpg":
        query = dict(parsed.query)
        if "sslmode" in query:
            query["ssl"] = query.pop("sslmode")
        if "options" in query:
            options = query.pop("options")
            settings: dict[str, str] = {}
            for part in (options if isinstance(options, str) else " ".join(options)).split():
                setting = part.removeprefix("-c")
                if "=" not in setting:
                    raise StoreError(f"DATABASE_URL options {part!r} is not of the form -cname=value")
                name, value = setting.split("=", 1)
                settings[name] = value
            connect_args["server_settings"] = settings
        parsed = parsed.set(query=query)
    elif parsed.drivername == "sqlite+aiosqlite":
        # Wait for a busy database instead of failing at once: replicas on one file take turns.
        connect_args["timeout"] = 30
    else:
        raise StoreError(
            f"DATABASE_URL uses {parsed.drivername!r}; use sqlite+aiosqlite:///file.db or postgresql://…"
        )
    return parsed, connect_args


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL once. The switch needs an exclusive lock, and SQLite answers "database is
    locked" at once (without waiting) when replicas starting together race for it: retry briefly.
    WAL is stored in the file, so every later connection finds it already on."""
    for attempt in range(50):
        try:
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.02)  # on aiosqlite's own thread, never the event loop


def create_engine(url: str) -> AsyncEngine:
    parsed, connect_args = engine_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database:
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder for the SQLite database {parsed.database}: {exc}"
            ) from exc
    if parsed.drivername.startswith("sqlite"):
        # One connection per process: SQLite has one writer at a time anyway, and queueing in the pool
        # is far cheaper than connections backing off on SQLite's busy lock (measured: 3-10x).
        engine = create_async_engine(parsed, connect_args=connect_args, pool_size=1, max_overflow=0)
    else:
        engine = create_async_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    if parsed.drivername.startswith("sqlite"):
        # pysqlite's deferred transactions can fail with "database is locked" when two writers upgrade
        # their read locks at once; BEGIN IMMEDIATE takes the write lock up front, so writers queue.
        @event.listens_for(engine.sync_engine, "connect")
        def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # WAL lets readers work during a write; NORMAL sync is crash-safe in WAL mode and avoids an
            # fsync per commit.
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config(attributes={"connection": connection} if connection is not None else {})
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration, safely when several replicas start at once."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), "head")

    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Held until this transaction commits; PostgreSQL DDL is transactional, so the next
                # replica sees the finished schema and Alembic has nothing left to do.
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            # On SQLite, BEGIN IMMEDIATE (see create_engine) already serialises replicas.
            await conn.run_sync(upgrade)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"could not migrate the database: {exc}") from exc


def _insert(conn: AsyncConnection, table: Table) -> Any:
    """INSERT with the dialect's ON CONFLICT support (same API on SQLite and PostgreSQL)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


# What a failed write was doing, for its error message.
_WHAT = {
    "processed_events": "recording an event id",
    "questions": "recording a question",
    "feedback": "recording feedback",
    "suggestion_picks": "recording a suggestion pick",
}


@dataclass(eq=False)  # compared by identity: two claims of one id are two different callers
class _Write:
    """One queued write: a row for `table`, the caller's time, and the future the caller awaits (for
    an event-id claim: whether it won)."""

    table: Table
    values: dict[str, Any]
    now: datetime
    future: asyncio.Future[bool] = field(repr=False)


async def _claim_events(conn: AsyncConnection, claims: list[_Write]) -> set[_Write]:
    """The claims that win: the first claim of each id that no replica holds yet, or holds expired.

    The primary key decides between replicas exactly as a one-row insert would: each id is inserted
    with ON CONFLICT DO NOTHING and RETURNING tells which inserts took.
    """
    first: dict[str, _Write] = {}
    for claim in claims:
        first.setdefault(claim.values["event_id"], claim)  # later claims in the batch are repeats
    # In one order everywhere, so that two PostgreSQL replicas inserting overlapping ids cannot deadlock.
    rows = [first[event_id] for event_id in sorted(first)]
    # Parameters as a list: SQLAlchemy sends them as multi-row VALUES ("insertmanyvalues") from one
    # cached statement, instead of compiling a new statement for every batch size.
    inserted = await conn.execute(
        _insert(conn, processed_events)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(processed_events.c.event_id),
        [row.values for row in rows],
    )
    won = set(inserted.scalars())
    # Seen before; an expired record is old enough to count as a new event (ids are reused only by
    # platforms that promise they are fresh after the retry window). The claims of one batch are
    # simultaneous, so they are judged at the batch's latest time: one UPDATE per ttl (in practice one).
    repeats = [row for row in rows if row.values["event_id"] not in won]
    by_ttl: dict[timedelta, list[str]] = defaultdict(list)
    for row in repeats:
        by_ttl[row.values["expires_at"] - row.now].append(row.values["event_id"])
    for ttl, event_ids in by_ttl.items():
        now = max(row.now for row in repeats)
        renewed = await conn.execute(
            update(processed_events)
            .where(processed_events.c.event_id.in_(event_ids), processed_events.c.expires_at <= now)
            .values(expires_at=now + ttl)
            .returning(processed_events.c.event_id)
        )
        won.update(renewed.scalars())
    return {first[event_id] for event_id in won}


async def _write_batch(conn: AsyncConnection, batch: list[_Write]) -> set[_Write]:
    """Write a batch in one transaction; returns the event-id claims that won."""
    by_table: dict[Table, list[_Write]] = defaultdict(list)
    for write in batch:
        by_table[write.table].append(write)
    won: set[_Write] = set()
    for table, writes in by_table.items():
        if table is processed_events:
            won = await _claim_events(conn, writes)
        else:
            await conn.execute(table.insert(), [write.values for write in writes])
    return won


def _disconnected(error: StoreError) -> bool:
    cause = error.__cause__
    return isinstance(cause, OSError) or (isinstance(cause, DBAPIError) and cause.connection_invalidated)


class _GroupCommit:
    """Group commit: many callers' writes in one transaction, without making any caller wait for a timer.

    Callers queue a write and await its future. One writer task takes everything queued (up to
    MAX_BATCH), writes it in one transaction and resolves the futures; writes pile up only while a
    transaction is running, so a lone write goes out at once and a burst costs a few transactions.
    """

    def __init__(self, run: Callable[[str, Callable[[AsyncConnection], Any]], Awaitable[Any]]) -> None:
        self._run = run
        self._queue: deque[_Write] = deque()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    async def write(self, table: Table, values: dict[str, Any], now: datetime) -> bool:
        if self._closed:
            raise StoreError(f"the store is closed; {_WHAT[table.name]} is not possible")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(_Write(table, values, now, future))
        self._wakeup.set()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_until_closed(), name="policybot-store-writes")
        # A caller that stops waiting (a timeout) does not withdraw its write: a claim it made still
        # counts for the other replicas.
        return await future

    async def close(self) -> None:
        """Write everything queued, then stop the writer."""
        self._closed = True
        self._wakeup.set()
        if self._writer is not None:
            await self._writer

    async def _write_until_closed(self) -> None:
        while self._queue or not self._closed:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
            await self._commit(batch)

    async def _commit(self, batch: list[_Write]) -> None:
        what = ", ".join(sorted({_WHAT[write.table.name] for write in batch}))
        try:
            won = await self._run(what, lambda conn: _write_batch(conn, batch))
        except StoreError as exc:
            if len(batch) > 1 and not _disconnected(exc):
                # One bad row must not fail the rest of the batch: write them one by one.
                for write in batch:
                    await self._commit([write])
                return
            for write in batch:
                _fail(write.future, exc)
            return
        except Exception as exc:  # the writer must outlive a bug, or every later write would hang
            log.exception("unexpected error while %s", what)
            for write in batch:
                _fail(write.future, StoreError(f"unexpected error while {what}: {exc!r}"))
            return
        for write in batch:
            if not write.future.done():
                write.future.set_result(write in won)


def _fail(future: asyncio.Future[bool], error: StoreError) -> None:
    """Fail one waiter with its own copy of `error` (an exception raised in many tasks would collect
    all their tracebacks)."""
    if not future.done():
        copy = StoreError(str(error))
        copy.__cause__ = error.__cause__
        future.set_exception(copy)


class Store(Recorder):
    """The database, behind the few operations the bot needs. Create it with `await Store.open(url)`."""

    def __init__(self, engine: AsyncEngine, *, retention_days: int, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self.retention_days = retention_days
        self._clock = clock
        self._writes = _GroupCommit(self._run)

    @classmethod
    async def open(
        cls, url: str, *, retention_days: int = 90, clock: Callable[[], datetime] = utcnow
    ) -> Store:
        engine = create_engine(url)
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, retention_days=retention_days, clock=clock)

    async def close(self) -> None:
        """Write everything still queued, then release the database connections."""
        try:
            await self._writes.close()
        finally:
            await self._engine.dispose()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine (for diagnostics: e.g. counting transactions with an event listener)."""
        return self._engine

    async def _run(self, what: str, operation: Callable[[AsyncConnection], Any]) -> Any:
        """Run `operation` in one transaction; database trouble becomes a StoreError."""
        try:
            async with self._engine.begin() as conn:
                return await operation(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"database error while {what}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"could not reach the database while {what}: {exc}") from exc

    # -- Slack event dedupe ------------------------------------------------------------------------

    async def claim_event(self, event_id: str, *, ttl: timedelta = timedelta(hours=1)) -> bool:
        """True the first time `event_id` is seen by any replica; False for a retry of it.

        Written with other callers' claims and records in one transaction (see `_GroupCommit`).
        """
        now = self._clock()
        return await self._writes.write(
            processed_events, {"event_id": event_id, "expires_at": now + ttl}, now
        )

    # -- conversation references (Teams) -------------------------------------------------------------

    async def save_reference(
        self, platform: str, conversation_id: str, reference: dict[str, Any], lang: str
    ) -> None:
        now = self._clock()

        async def op(conn: AsyncConnection) -> None:
            stmt = _insert(conn, conversation_references).values(
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

    async def record_question(
        self, question: str, lang: str, outcome: ReplyKind, entry_id: str | None, confidence: float
    ) -> None:
        now = self._clock()
        values = {
            "asked_at": now,
            "question": question,
            "lang": lang,
            "outcome": str(outcome),
            "entry_id": entry_id,
            "confidence": confidence,
        }
        await self._writes.write(questions, values, now)

    async def record_feedback(self, entry_id: str, helpful: bool) -> None:
        now = self._clock()
        await self._writes.write(feedback, {"entry_id": entry_id, "helpful": helpful, "day": now.date()}, now)

    async def record_suggestion_pick(self, question: str, entry_id: str, lang: str) -> None:
        now = self._clock()
        values = {"at": now, "question": question, "entry_id": entry_id, "lang": lang}
        await self._writes.write(suggestion_picks, values, now)

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
                _insert(conn, tip_posts)
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

    async def next_tip_attempt(self) -> datetime | None:
        """When the earliest PENDING tip is due, if any (the scheduler sleeps until then)."""

        async def op(conn: AsyncConnection) -> datetime | None:
            value = (
                await conn.execute(
                    select(func.min(tip_posts.c.next_attempt_at)).where(
                        tip_posts.c.status == TipStatus.PENDING.value
                    )
                )
            ).scalar_one()
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
            stmt = _insert(conn, escalation_routes).values(
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
