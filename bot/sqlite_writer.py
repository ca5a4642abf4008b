"""The store's one connection on SQLite, blocking (pysqlite): every operation runs on a thread of its own,
except the group commit's batches (bot/group_commit.py), which run on the event loop itself when the write
lock is free at once, their statements straight to sqlite3.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import Connection, Dialect, Engine, Table, event
from sqlalchemy.engine import URL

from bot.errors import StoreError

T = TypeVar("T")
Batch = Callable[[Connection], T]  # an operation (a group commit's batch, a read): run in one transaction

# -- SQLite: the statements of a batch straight to sqlite3 ----------------------------------------
# On the writer's thread a batch is a handful of plain INSERTs; SQLAlchemy's execution of each (cache
# key, execution context, result) cost ~0.2 ms of CPU per lone claim, more than SQLite's own work.
# The SQL is written once per table and the values go through the columns' own bind processors, so
# what is stored is exactly what SQLAlchemy would store (and reads back the same).


def sqlite3_of(conn: Connection) -> sqlite3.Connection | None:
    """The sqlite3 connection under a blocking SQLite `conn` (the SQLiteWriter's), else None."""
    raw = conn.connection.dbapi_connection
    return raw if isinstance(raw, sqlite3.Connection) else None


@cache
def raw_insert(
    dialect: Dialect, table: Table, keys: tuple[str, ...], *, claim: bool = False, replace: bool = False
) -> tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]:
    """INSERT for `table`'s columns `keys` (a claim: ON CONFLICT DO NOTHING RETURNING its id; `replace`:
    ON CONFLICT of the first key, the other columns take the new values), and how a row's values
    become its parameters."""
    quote = dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(key) for key in keys)}) "
        f"VALUES ({', '.join('?' for _ in keys)})"
    )
    if claim:
        sql += f" ON CONFLICT ({quote(keys[0])}) DO NOTHING RETURNING {quote(keys[0])}"
    if replace:
        columns = ", ".join(f"{quote(key)} = excluded.{quote(key)}" for key in keys[1:])
        sql += f" ON CONFLICT ({quote(keys[0])}) DO UPDATE SET {columns}"
    return sql, _binder(dialect, table, keys)


@cache
def raw_by_key(
    dialect: Dialect, table: Table, keys: tuple[str, ...], *, delete: bool
) -> tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]:
    """DELETE the row a write's primary key names, or UPDATE its columns `keys` (the key not among
    them) to the write's values; and how a write's values become the parameters."""
    quote = dialect.identifier_preparer.quote
    [key] = table.primary_key.columns
    where = f"WHERE {quote(key.name)} = ?"
    if delete:
        return f"DELETE FROM {quote(table.name)} {where}", _binder(dialect, table, (key.name,))
    columns = ", ".join(f"{quote(name)} = ?" for name in keys)
    sql = f"UPDATE {quote(table.name)} SET {columns} {where}"
    return sql, _binder(dialect, table, (*keys, key.name))


def _binder(
    dialect: Dialect, table: Table, keys: tuple[str, ...]
) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    # The dialect's own type (SQLite's DATETIME writes "…00:00:00.000000"), as SQLAlchemy binds it:
    # a generic type's processor would leave the value to sqlite3, which writes "…00:00:00", and SQL's
    # string comparison would then put a question asked at midnight before midnight.
    processors = [(key, table.c[key].type.dialect_impl(dialect).bind_processor(dialect)) for key in keys]

    def bind(values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            values[key] if process is None or values[key] is None else process(values[key])
            for key, process in processors
        )

    return bind


# -- the connection: WAL, NORMAL sync, BEGIN IMMEDIATE ---------------------------------------------


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
            time.sleep(0.02)  # on the SQLite connection's own thread, never the event loop


def _sqlite_folder(parsed: URL) -> None:
    if parsed.database:
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder for the SQLite database {parsed.database}: {exc}"
            ) from exc


def _sqlite_setup(engine: Engine) -> None:
    """WAL, NORMAL sync and BEGIN IMMEDIATE on every connection of an SQLite engine."""

    # pysqlite's deferred transactions can fail with "database is locked" when two writers upgrade
    # their read locks at once; BEGIN IMMEDIATE takes the write lock up front, so writers queue.
    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers work during a write; NORMAL sync is crash-safe in WAL mode and avoids an
        # fsync per commit.
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        raw = connection.connection.dbapi_connection
        # straight to sqlite3 (~0.1 ms less); the SQLiteWriter begins its transactions itself
        if isinstance(raw, sqlite3.Connection) and not raw.in_transaction:
            raw.execute("BEGIN IMMEDIATE")


def create_sqlite_engine(parsed: URL, connect_args: dict[str, Any]) -> Engine:
    """The blocking engine of an SQLite DATABASE_URL (bot/database.py's `engine_url`), its folder
    created: one connection (the SQLiteWriter's), WAL, NORMAL sync and BEGIN IMMEDIATE."""
    _sqlite_folder(parsed)
    engine = sqlalchemy.create_engine(
        parsed, pool_size=1, max_overflow=0, hide_parameters=True,
        # used by the event loop's thread and the SQLiteWriter's, never both at once
        connect_args=connect_args | {"check_same_thread": False},
    )  # fmt: skip
    _sqlite_setup(engine)
    return engine


# Commits on the event loop between two WAL checkpoints; a checkpoint syncs the file, so it is made on the
# writer's thread (with the batch after them), never on the loop.
CHECKPOINT_EVERY = 200
_BUSY_WAIT_MS = 30_000  # on the thread: wait for another writer as long as the engines do (replicas)


class _Locked(Exception):
    """Another connection holds SQLite's write lock, or the thread is using (or must open) the
    connection: the batch is not started on the loop."""


class SQLiteWriter:
    """Runs functions of a blocking SQLAlchemy `Connection` in transactions of one SQLite connection:
    the store's operations on a thread of its own, and the group commit's batches on the event loop
    when they can.

    A batch runs on the event loop itself when SQLite's write lock is free at once: a few INSERTs and
    a commit in WAL mode with synchronous=NORMAL (no fsync) take tens of microseconds, while handing
    them to a thread and back waits for the OS scheduler twice (measured on a busy 2-core machine:
    p50 3 ms for a lone claim, on the path before Slack gets its answer). When another connection holds
    the lock (a replica on the same file), or the thread is using the connection, the loop never waits:
    the batch goes to the thread, which waits for the lock as long as the engines do. Every other
    operation (reads, migrations, the tips' compare-and-sets) runs on the thread, never blocking the
    loop. The WAL is checkpointed there as well, after every CHECKPOINT_EVERY commits on the loop.
    The connection stays open between transactions (no pool checkout, reset and return per
    transaction); one that failed is replaced by the next. The loop and the thread never use the
    connection at once: whoever uses it holds `_lock`, and the loop only ever tries it.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policybot-sqlite-writes")
        self._lock = threading.Lock()  # held while the connection is in use, by the loop or the thread
        self._conn: Connection | None = None
        self._busy_ms = -1  # the connection's busy timeout as last set
        self._since_checkpoint = 0
        self._closed = False

    def _connected(self) -> bool:
        return self._conn is not None and not self._conn.invalidated and not self._conn.closed

    def _connection(self) -> Connection:
        if self._conn is None or not self._connected():
            self._conn = self.engine.connect()
            raw = sqlite3_of(self._conn)
            assert raw is not None  # a blocking SQLite engine (bot/database.py)
            raw.execute("PRAGMA wal_autocheckpoint=0")  # see CHECKPOINT_EVERY
            self._busy_ms = -1
        return self._conn

    async def run(self, operation: Batch[T], *, on_loop: bool = False) -> T:
        """Run `operation` in one transaction on the thread; `on_loop` (a group commit's batch): on the
        event loop itself if the connection and SQLite's write lock are free at once."""
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")  # as sqlite3 says it
        if on_loop and self._since_checkpoint < CHECKPOINT_EVERY:
            try:
                return self._transaction(operation, wait=False)
            except _Locked:
                pass
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._thread, functools.partial(self._transaction, operation, wait=True)
        )

    def _transaction(self, operation: Batch[T], *, wait: bool) -> T:
        if not self._lock.acquire(blocking=wait):  # the thread is using the connection
            raise _Locked
        try:
            if not wait and not self._connected():
                raise _Locked  # connecting may wait for replicas switching the file to WAL: the thread's
            conn = self._connection()
            raw = sqlite3_of(conn)
            assert raw is not None
            busy_ms = _BUSY_WAIT_MS if wait else 0
            try:
                if busy_ms != self._busy_ms:
                    raw.execute(f"PRAGMA busy_timeout={busy_ms}")
                    self._busy_ms = busy_ms
                try:
                    raw.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if not wait and exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                        raise _Locked from exc
                    raise
                with conn.begin():  # SQLAlchemy's view of the transaction begun above; commits it
                    result = operation(conn)
            except _Locked:
                raise
            except BaseException:
                conn.close()  # rolls back; the next transaction starts on a fresh connection
                self._conn = None
                raise
            if not wait:
                self._since_checkpoint += 1
            elif self._since_checkpoint:
                raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
                self._since_checkpoint = 0
            return result
        finally:
            self._lock.release()

    def _dispose(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self.engine.dispose()

    async def close(self) -> None:
        """Close the connection on the thread, then stop the thread."""
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._thread, self._dispose)
        self._thread.shutdown(wait=True)
