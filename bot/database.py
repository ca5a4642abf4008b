"""How the bot talks to its database: the schema, where operations run (`Database`), migrations.

An SQLite file by default, PostgreSQL when `DATABASE_URL` points at one. Every operation of the store is a
plain function of a blocking SQLAlchemy `Connection`, run in one transaction by `Database.run`: on SQLite
on one blocking (pysqlite) connection, on a thread of its own (bot/sqlite_writer.py); on PostgreSQL on an
async engine's connection (asyncpg), through `run_sync`. SQLAlchemy's asyncio extension (which imports
its ORM and greenlet, 6 MiB) is imported only for PostgreSQL.

The schema (`metadata`) is owned by the Alembic migrations in `bot/migrations`, applied by `migrate`
(from `Store.open` and `policybot db upgrade`); an empty database is built from `metadata` and stamped
at the newest migration instead (tests/bot/test_database.py checks both give one schema). Concurrent
replicas starting at once serialise on a lock, so the second one finds the schema already at head.

The writes on every message's path (event-id claims, questions, feedback, suggestion picks) go through a
group commit (bot/group_commit.py), its batches run by `Database.run_batch`: on SQLite on the event loop
itself when the write lock is free at once, else on the thread.

What the bot keeps in these tables, and the operations on them, are in bot/store.py.
"""

from __future__ import annotations

import importlib
import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Dialect,
    Engine,
    Float,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from bot.config import normalise_database_url
from bot.errors import StoreError
from bot.sqlite_writer import SQLiteWriter, create_sqlite_engine

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration's revision id (bot/migrations/versions; tests/bot/test_database.py checks it): a
# database already there is opened without importing Alembic (+11 MiB, +0.1 s at every start).
HEAD_REVISION = "0003"
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

# Questions acknowledged and not answered yet (bot/store_pending.py): what answering one later needs and
# nothing else. `claim_key` is the keyed hash its event's claim is stored under; `reference` says where to
# post (a Slack channel and thread, a Teams conversation reference without its user), never who asked.
# A row lives from the claim to the answer; `lease_until` is when another process may take it over.
pending_answers = Table(
    "pending_answers",
    metadata,
    Column("claim_key", String(64), primary_key=True),
    Column("platform", String(32), nullable=False),
    Column("reference", JSON(), nullable=False),
    Column("question", Text(), nullable=False),
    Column("lang_hint", String(8), nullable=True),
    Column("state", String(16), nullable=False),  # "answering", or "posting" (outcome unknown if found)
    Column("attempts", Integer, nullable=False),
    Column("lease_until", UTCDateTime(), nullable=False, index=True),
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
    elif parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        # Wait for a busy database instead of failing at once: replicas on one file take turns.
        connect_args["timeout"] = 30
    else:
        raise StoreError(f"DATABASE_URL uses {parsed.drivername!r}; use sqlite:///file.db or postgresql://…")
    return parsed, connect_args


class Database:
    """One database, and where its operations run: each a function of a blocking SQLAlchemy
    `Connection`, in one transaction, never blocking the event loop.

    SQLite: on one blocking (pysqlite) connection per process, on a thread of its own
    (`SQLiteWriter`); the group commit's batches (`run_batch`) on the event loop itself when SQLite's
    write lock is free at once. SQLite has one writer at a time anyway, and queueing for one
    connection is far cheaper than connections backing off on SQLite's busy lock (measured: 3-10x).
    PostgreSQL: an async engine (asyncpg), the operation run on its connection by `run_sync`.

    No error ever quotes a statement's parameters (`hide_parameters`): those are what people asked and
    where they chat, and a database error ends up in the logs and in an admin's chat reply.
    """

    def __init__(self, url: str) -> None:
        parsed, connect_args = engine_url(url)
        self._sqlite: SQLiteWriter | None = None
        self._async: AsyncEngine | None = None
        if parsed.drivername.startswith("sqlite"):
            self._sqlite = SQLiteWriter(create_sqlite_engine(parsed, connect_args))
            self.engine: Engine = self._sqlite.engine
        else:
            from sqlalchemy.ext.asyncio import create_async_engine  # +6 MiB: PostgreSQL only

            self._async = create_async_engine(
                parsed, connect_args=connect_args, pool_pre_ping=True, hide_parameters=True
            )
            self.engine = self._async.sync_engine  # for event listeners (diagnostics, tests)
        self.dialect: str = self.engine.dialect.name

    async def run(self, operation: Callable[[Connection], T]) -> T:
        """Run `operation` in one transaction (committed if it returns, rolled back if it raises)."""
        if self._sqlite is not None:
            return await self._sqlite.run(operation)
        assert self._async is not None
        async with self._async.begin() as conn:
            return await conn.run_sync(operation)

    async def run_batch(self, batch: Callable[[Connection], T]) -> T:
        """`run` for a group commit's batch: on SQLite, on the event loop if the write lock is free."""
        if self._sqlite is not None:
            return await self._sqlite.run(batch, on_loop=True)
        return await self.run(batch)

    async def close(self) -> None:
        """Release the connections (on SQLite, on its thread; then the thread stops)."""
        if self._sqlite is not None:
            await self._sqlite.close()
        if self._async is not None:
            await self._async.dispose()


def alembic_config(connection: Connection | None = None) -> Any:
    """Alembic's Config for bot/migrations (an `alembic.config.Config`; Alembic is imported here only)."""
    from alembic.config import Config

    cfg = Config(attributes={"connection": connection} if connection is not None else {})
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


async def schema_version(database: Database) -> str | None:
    """The revision the database is at (Alembic's `alembic_version` table), None when it has none yet."""

    def version(conn: Connection) -> Any:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    try:
        found = await database.run(version)
    except DBAPIError:  # no such table: a new database (the failed transaction is rolled back)
        return None
    return None if found is None else str(found)


async def migrate(database: Database) -> None:
    """Bring the schema to the newest migration, safely when several replicas start at once.

    A database already at HEAD_REVISION costs one SELECT: Alembic is loaded only when there is work.
    """

    def upgrade(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Held until this transaction commits; PostgreSQL DDL is transactional, so the next
            # replica sees the finished schema and Alembic has nothing left to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        # On SQLite, BEGIN IMMEDIATE (see SQLiteWriter) already serialises replicas.
        if _at_head_or_built_new(connection):
            return
        from alembic import command

        command.upgrade(alembic_config(connection), "head")

    try:
        if await schema_version(database) == HEAD_REVISION:
            return
        await database.run(upgrade)
    except (SQLAlchemyError, OSError, sqlite3.Error) as exc:
        raise StoreError(f"could not migrate the database: {await _why(database, exc)}") from exc


# Alembic's own bookkeeping table, as Alembic creates it; written here only for a database built new.
alembic_version = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def _at_head_or_built_new(connection: Connection) -> bool:
    """Under the migration lock: True when another replica got the schema to HEAD_REVISION meanwhile,
    or when the database was empty and has been built from `metadata` and stamped at HEAD_REVISION —
    Alembic's own advice for a new database ("create_all, then stamp head"), without loading Alembic
    (+11 MiB) at the first start. A database with tables of ours and an older revision is migrated."""
    existing = set(sqlalchemy.inspect(connection).get_table_names())
    if alembic_version.name in existing:
        version = connection.execute(sqlalchemy.select(alembic_version.c.version_num)).scalar()
        if version == HEAD_REVISION:
            return True
    if existing & ({table.name for table in metadata.sorted_tables} | {alembic_version.name}):
        return False
    metadata.create_all(connection)
    alembic_version.create(connection)
    connection.execute(alembic_version.insert().values(version_num=HEAD_REVISION))
    return True


async def _why(database: Database, exc: Exception) -> str:
    """The database's own one-line reason, without SQLAlchemy's quoted SQL and background link; for
    PostgreSQL's "no schema has been selected", which schema is missing and what to do about it."""
    cause = getattr(exc, "orig", None) or exc
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    if "no schema has been selected" not in reason:
        return reason
    try:
        path = await database.run(lambda conn: conn.execute(text("SHOW search_path")).scalar_one())
    except SQLAlchemyError:
        path = "?"
    return (
        f"the schema in DATABASE_URL's search_path ({path}) does not exist; create it first "
        f"(e.g. CREATE SCHEMA {str(path).split(',')[0].strip()};) or leave out the options"
    )


def insert_for(dialect: str) -> Any:
    """The dialect's `insert`, with its ON CONFLICT support (the same API on SQLite and PostgreSQL).

    Imported by name, when first needed: a SQLite deployment never loads SQLAlchemy's PostgreSQL
    dialect (its engine loads it for PostgreSQL), which is 2.6 MiB of every replica's memory.
    """
    name = "postgresql" if dialect == "postgresql" else "sqlite"
    return importlib.import_module(f"sqlalchemy.dialects.{name}").insert


def dialect_insert(conn: Connection, table: Table) -> Any:
    """INSERT with the dialect's ON CONFLICT support (same API on SQLite and PostgreSQL)."""
    return insert_for(conn.dialect.name)(table)
