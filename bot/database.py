"""How the bot talks to its database: the schema, the engine, migrations and the group commit.

One SQLAlchemy (async) engine on an SQLite file by default, PostgreSQL when `DATABASE_URL` points at one.
The schema (`metadata`) is owned by the Alembic migrations in `bot/migrations`, applied by `migrate`
(from `Store.open` and `policybot db upgrade`); concurrent replicas starting at once serialise on a lock,
so the second one finds the schema already at head.

The writes on every message's path (event-id claims, questions, feedback, suggestion picks) go through a
group commit (`GroupCommit`): whatever is queued while one transaction runs is written by the next one,
a single transaction for many callers, so the database round trips stop growing with the message rate.

What the bot keeps in these tables, and the operations on them, are in bot/store.py.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
    event,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from bot.config import normalise_database_url
from bot.errors import StoreError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant will do, as long as every replica uses the same one: pg_advisory_xact_lock takes a bigint.
MIGRATION_LOCK_KEY = 0x706F6C6963790001
# Most writes one group-commit transaction takes; keeps statements far below SQLite's and PostgreSQL's
# bound-parameter limits (32766 / 32767) and one transaction short.
MAX_BATCH = 200


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
        raise StoreError(f"DATABASE_URL uses {parsed.drivername!r}; use sqlite:///file.db or postgresql://…")
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
    """The engine for a DATABASE_URL. Its errors never quote a statement's parameters
    (`hide_parameters`): those are what people asked and where they chat, and a database error ends
    up in the logs and in an admin's chat reply."""
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
        engine = create_async_engine(
            parsed, connect_args=connect_args, pool_size=1, max_overflow=0, hide_parameters=True
        )
    else:
        engine = create_async_engine(
            parsed, connect_args=connect_args, pool_pre_ping=True, hide_parameters=True
        )
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
        raise StoreError(f"could not migrate the database: {await _why(engine, exc)}") from exc


async def _why(engine: AsyncEngine, exc: Exception) -> str:
    """The database's own one-line reason, without SQLAlchemy's quoted SQL and background link; for
    PostgreSQL's "no schema has been selected", which schema is missing and what to do about it."""
    cause = getattr(exc, "orig", None) or exc
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    if "no schema has been selected" not in reason:
        return reason
    try:
        async with engine.connect() as conn:
            path = (await conn.execute(text("SHOW search_path"))).scalar_one()
    except SQLAlchemyError:
        path = "?"
    return (
        f"the schema in DATABASE_URL's search_path ({path}) does not exist; create it first "
        f"(e.g. CREATE SCHEMA {str(path).split(',')[0].strip()};) or leave out the options"
    )


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
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
        dialect_insert(conn, processed_events)
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


class GroupCommit:
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
