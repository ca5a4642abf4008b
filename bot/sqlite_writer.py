"""The group commit's writer on SQLite: a batch's statements straight to sqlite3, on the event loop
when the write lock is free, else on a thread of its own (bot/group_commit.py runs the batches).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Connection, Dialect, Engine, Table
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import StoreError

T = TypeVar("T")
Batch = Callable[[Connection], T]  # writes one batch on a plain SQLAlchemy connection, in a transaction

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


# Commits on the event loop between two WAL checkpoints; a checkpoint syncs the file, so it is made on the
# writer's thread (with the batch after them), never on the loop.
CHECKPOINT_EVERY = 200
_BUSY_WAIT_MS = 30_000  # on the thread: wait for another writer as long as the engines do (replicas)


class _Locked(Exception):
    """Another connection holds SQLite's write lock: the batch is not started on the loop."""


class SQLiteWriter:
    """Runs batch functions in transactions of one blocking SQLite connection.

    A batch runs on the event loop itself when SQLite's write lock is free at once: a few INSERTs and
    a commit in WAL mode with synchronous=NORMAL (no fsync) take tens of microseconds, while handing
    them to a thread and back waits for the OS scheduler twice (measured on a busy 2-core machine:
    p50 3 ms for a lone claim, on the path before Slack gets its answer). When another connection holds
    the lock (a replica on the same file, or the async engine's transaction, which needs this very loop
    to finish) the loop never waits: the batch goes to a thread of its own, which waits for the lock as
    long as the engines do. The WAL is checkpointed there as well, after every CHECKPOINT_EVERY commits.
    The connection stays open between batches (no pool checkout, reset and return per transaction); one
    that failed is replaced by the next batch. Batches never overlap (the group commit runs one at a
    time), so the loop and the thread never use the connection at once.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policybot-sqlite-writes")
        self._conn: Connection | None = None
        self._busy_ms = -1  # the connection's busy timeout as last set
        self._since_checkpoint = 0

    async def connect(self) -> None:
        """Open the connection ahead of the first batch, on the thread (connecting may wait for
        replicas switching the file to WAL); a database that cannot be opened is a StoreError."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._connection)
        except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
            raise StoreError(f"could not open the SQLite database for writing: {exc}") from exc

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.invalidated or self._conn.closed:
            self._conn = self.engine.connect()
            raw = sqlite3_of(self._conn)
            assert raw is not None  # a blocking SQLite engine (create_sqlite_write_engine)
            raw.execute("PRAGMA wal_autocheckpoint=0")  # see CHECKPOINT_EVERY
            self._busy_ms = -1
        return self._conn

    async def run(self, batch: Batch[T]) -> T:
        # (connecting, which may wait for replicas switching the file to WAL, is left to the thread)
        if self._conn is not None and self._since_checkpoint < CHECKPOINT_EVERY:
            try:
                result = self._transaction(batch, wait=False)
            except _Locked:
                pass
            else:
                self._since_checkpoint += 1
                return result
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._thread, functools.partial(self._transaction, batch, wait=True)
        )

    def _transaction(self, batch: Batch[T], *, wait: bool) -> T:
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
                result = batch(conn)
        except _Locked:
            raise
        except BaseException:
            conn.close()  # rolls back; the next batch starts on a fresh connection
            self._conn = None
            raise
        if wait and self._since_checkpoint:
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._since_checkpoint = 0
        return result

    def _dispose(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()

    async def close(self) -> None:
        """Close the connection on the writer's thread, then stop the thread."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._dispose)
        self._thread.shutdown(wait=True)
