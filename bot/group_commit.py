"""The writes on every message's path, in as few transactions (and thread hops) as possible.

Two kinds of write go through `GroupCommit`:

- claims (Slack event ids, answered mentions): the caller needs the answer — did this replica win? —
  before it may reply, so a claim wakes the writer at once; claims queued together (`claim_many`)
  are decided in one transaction, one store round trip for all the claims an event needs;
- an event that will be answered claims with a `hold`: the `pending_answers` row that lets another
  process answer it if this one dies first (bot/store_pending.py), inserted in the same transaction;
  when its own claim loses (a retry) and that row's lease has expired, the retry takes the row over and
  wins, with the claims of its group (an @mention's message);
- records (questions, feedback votes, picked suggestions, an answer's "posting" mark, finished
  answers' rows to delete): nobody waits for them. They are queued and
  ride along with the next claims' transaction, or are written after `DEFER_SECONDS`, whichever comes
  first; at the light load of a normal day an answered mention then costs one transaction, not three.
  Reads of the store `flush` them first, and `close` writes everything still queued (nothing is lost on
  a clean shutdown; a crash loses at most the last `DEFER_SECONDS` of records, never a claim).

A batch is one transaction written by a function of a plain SQLAlchemy `Connection`
(`Database.run_batch`, bot/database.py). On PostgreSQL it runs through the async engine (`run_sync`). On
SQLite (`SQLiteWriter`) it runs on the store's blocking connection, its INSERTs straight to sqlite3: on the
event loop when the write lock is free at once (no thread hop at all), else on the connection's thread,
which waits for the lock — aiosqlite, which the store once used, took a hop per statement, fetch and
commit, each waking two threads (measured: 2.5-3 ms of CPU per lone transaction, most of an answer's cost
at a light load).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, delete, update
from sqlalchemy.exc import DBAPIError

from bot.database import insert_for, pending_answers, processed_events
from bot.errors import StoreError
from bot.sqlite_writer import Batch, raw_by_key, raw_insert, sqlite3_of

log = logging.getLogger(__name__)

# Most writes one transaction takes; keeps statements far below SQLite's and PostgreSQL's
# bound-parameter limits (32766 / 32767) and one transaction short.
MAX_BATCH = 200
# The longest a record waits for a claims' transaction to share before it gets one of its own.
DEFER_SECONDS = 1.0
# What a queued record does to its table; and in which order a batch does them (claims go third).
INSERT, UPDATE, DELETE = "insert", "update", "delete"
_ORDER = {DELETE: 0, UPDATE: 1, INSERT: 2}

# What a failed write was doing, for its error message.
_WHAT = {
    "processed_events": "recording an event id",
    "questions": "recording a question",
    "feedback": "recording feedback",
    "suggestion_picks": "recording a suggestion pick",
    "pending_answers": "finishing an answer",
}

# Runs one batch function in one transaction; database trouble comes out as StoreError.
Runner = Callable[[str, Batch[set["_Write"]]], Awaitable[set["_Write"]]]


@dataclass(eq=False)  # compared by identity: two claims of one id are two different callers
class _Write:
    """One queued write: a row for `table`, the caller's time, and the future that says how it went
    (for a claim: whether it won; for a record, which nobody awaits but `flush`: True once written)."""

    table: Table
    values: dict[str, Any]
    now: datetime
    future: asyncio.Future[bool] = field(repr=False)
    claim: bool
    hold: dict[str, Any] | None = None  # a claim's `pending_answers` row (without its key: the claim's)
    group: tuple[_Write, ...] = ()  # the other claims of the same event, won or lost with this one
    op: str = INSERT  # a record's: INSERT its row, UPDATE or DELETE the row its primary key names


@cache
def _hold_statement(dialect: str) -> Any:
    """INSERT a pending answer, replacing a leftover row of an expired claim of the same key."""
    insert = insert_for(dialect)
    statement = insert(pending_answers)
    columns = [c.name for c in pending_answers.c if c.name != "claim_key"]
    return statement.on_conflict_do_update(
        index_elements=["claim_key"], set_={name: statement.excluded[name] for name in columns}
    )


def _holds(conn: Connection, holders: list[_Write], won: set[_Write]) -> set[_Write]:
    """Store the pending answers of the events that won all their claims; a holder that lost (a retry)
    takes its event's row over if its lease has expired (the process answering it died): it then wins,
    with its group. Returns the writes won by takeover."""
    rows = [
        {**write.hold, "claim_key": write.values["event_id"]}
        for write in holders
        if write.hold is not None and write in won and all(other in won for other in write.group)
    ]
    if rows:
        raw = sqlite3_of(conn)
        if raw is not None:
            keys = ("claim_key", *(key for key in rows[0] if key != "claim_key"))
            sql, bind = raw_insert(conn.dialect, pending_answers, keys, replace=True)
            raw.executemany(sql, [bind(row) for row in rows])
        else:
            conn.execute(_hold_statement(conn.dialect.name), rows)
    taken: set[_Write] = set()
    for write in holders:
        if write in won or write.hold is None:
            continue
        row = pending_answers.c
        taken_over = conn.execute(
            update(pending_answers)
            .where(
                row.claim_key == write.values["event_id"],
                row.state == "answering",
                row.lease_until <= write.now,
            )
            .values(lease_until=write.hold["lease_until"])
            .returning(row.claim_key)
        ).first()
        if taken_over is not None:
            taken.update((write, *write.group))
    return taken


@cache
def _claim_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING event_id, built once per dialect (not per batch)."""
    insert = insert_for(dialect)
    return (
        insert(processed_events)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(processed_events.c.event_id)
    )


def _claim_events(conn: Connection, claims: list[_Write]) -> set[_Write]:
    """The claims that win: the first claim of each id that no replica holds yet, or holds expired.

    The primary key decides between replicas exactly as a one-row insert would: each id is inserted
    with ON CONFLICT DO NOTHING and RETURNING tells which inserts took.
    """
    first: dict[str, _Write] = {}
    for claim in claims:
        first.setdefault(claim.values["event_id"], claim)  # later claims in the batch are repeats
    # In one order everywhere, so that two PostgreSQL replicas inserting overlapping ids cannot deadlock.
    rows = [first[event_id] for event_id in sorted(first)]
    raw = sqlite3_of(conn)
    if raw is not None:
        sql, bind = raw_insert(conn.dialect, processed_events, ("event_id", "expires_at"), claim=True)
        won = {str(event_id) for row in rows for (event_id,) in raw.execute(sql, bind(row.values))}
    else:
        # Parameters as a list: SQLAlchemy sends them as multi-row VALUES ("insertmanyvalues") from one
        # cached statement, instead of compiling a new statement for every batch size.
        inserted = conn.execute(_claim_statement(conn.dialect.name), [row.values for row in rows])
        won = set(inserted.scalars())
    # Seen before; an expired record is old enough to count as a new event (ids are reused only by
    # platforms that promise they are fresh after the retry window). The claims of one batch are
    # simultaneous, so they are judged at the batch's latest time: one UPDATE per ttl.
    repeats = [row for row in rows if row.values["event_id"] not in won]
    by_ttl: dict[timedelta, list[str]] = defaultdict(list)
    for row in repeats:
        by_ttl[row.values["expires_at"] - row.now].append(row.values["event_id"])
    for ttl, event_ids in by_ttl.items():
        now = max(row.now for row in repeats)
        renewed = conn.execute(
            update(processed_events)
            .where(processed_events.c.event_id.in_(event_ids), processed_events.c.expires_at <= now)
            .values(expires_at=now + ttl)
            .returning(processed_events.c.event_id)
        )
        won.update(renewed.scalars())
    winners = {first[event_id] for event_id in won}
    holders = [claim for claim in claims if claim.hold is not None]
    return winners | _holds(conn, holders, winners) if holders else winners


def _write_batch(conn: Connection, batch: list[_Write]) -> set[_Write]:
    """Write a batch in one transaction; returns the claims that won."""
    by_table: dict[tuple[Table, str], list[_Write]] = defaultdict(list)
    # Finished and posting answers first: a retry claimed in the same batch must not take them over.
    for write in sorted(batch, key=lambda write: _ORDER[write.op]):
        by_table[write.table, write.op].append(write)
    won: set[_Write] = set()
    raw = sqlite3_of(conn)
    for (table, op), writes in by_table.items():
        keys = tuple(writes[0].values)
        if table is processed_events:
            won = _claim_events(conn, writes)
        elif op == INSERT and raw is not None and all(tuple(write.values) == keys for write in writes):
            sql, bind = raw_insert(conn.dialect, table, keys, claim=False)
            raw.executemany(sql, [bind(write.values) for write in writes])
        elif op == INSERT:
            conn.execute(table.insert(), [write.values for write in writes])
        else:
            _by_key(conn, table, op, writes)
    return won


def _by_key(conn: Connection, table: Table, op: str, writes: list[_Write]) -> None:
    """DELETE the rows the writes name by primary key, or UPDATE them (one statement per new values)."""
    [key] = table.primary_key.columns
    raw = sqlite3_of(conn)
    if raw is not None:  # one statement per row, straight to sqlite3 (see bot/sqlite_writer.py)
        for write in writes:
            columns = tuple(name for name in write.values if name != key.name)
            sql, bind = raw_by_key(conn.dialect, table, columns, delete=op == DELETE)
            raw.execute(sql, bind(write.values))
        return
    if op == DELETE:
        conn.execute(delete(table).where(key.in_([write.values[key.name] for write in writes])))
        return
    by_values: dict[tuple[tuple[str, Any], ...], list[Any]] = defaultdict(list)
    for write in writes:
        values = tuple(sorted((k, v) for k, v in write.values.items() if k != key.name))
        by_values[values].append(write.values[key.name])
    for values, keys in by_values.items():
        conn.execute(update(table).where(key.in_(keys)).values(dict(values)))


def _disconnected(error: StoreError) -> bool:
    cause = error.__cause__
    return isinstance(cause, OSError) or (isinstance(cause, DBAPIError) and cause.connection_invalidated)


class GroupCommit:
    """Group commit: many callers' writes in one transaction, without making any caller wait for a timer.

    One writer task takes everything queued (up to MAX_BATCH: claims first, records after), writes it
    in one transaction and resolves the futures. Claims pile up only while a transaction is running, so
    a lone claim goes out at once and a burst costs a few transactions; records wait for the next claims
    (or DEFER_SECONDS).
    """

    def __init__(self, run: Runner, *, defer_seconds: float = DEFER_SECONDS) -> None:
        self._run = run
        self._defer_seconds = defer_seconds
        self._claims: deque[_Write] = deque()
        self._records: deque[_Write] = deque()
        self._records_due = 0.0  # loop time by which the oldest queued record is written
        self._flush_now = False
        self._writing: list[_Write] = []  # the batch being written
        self._wakeup = asyncio.Event()
        # Wakes the writer when the oldest queued record is due: armed by whoever queues it (a timer
        # handle, not a task switch into the writer to start a timeout: at a light load every answer
        # queues a record after its claims' transaction, and that wake-up was one per answer).
        self._due_timer: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def unwritten_records(self) -> bool:
        """Whether records are queued or being written (a read must `flush` first to see them)."""
        return bool(self._records) or any(not write.claim for write in self._writing)

    def _queue(
        self, table: Table, values: dict[str, Any], now: datetime, *, claim: bool, op: str = INSERT
    ) -> _Write:
        if self._closed:
            raise StoreError(f"the store is closed; {_WHAT[table.name]} is not possible")
        loop = asyncio.get_running_loop()
        write = _Write(table, values, now, loop.create_future(), claim, op=op)
        if claim:
            self._claims.append(write)
            self._wakeup.set()
        else:
            if not self._records:
                self._records_due = loop.time() + self._defer_seconds
                self._arm(loop)
            self._records.append(write)
            if len(self._records) >= MAX_BATCH:
                self._wakeup.set()
        if self._writer is None:
            self._writer = loop.create_task(self._write_until_closed(), name="policybot-store-writes")
        return write

    async def claim(self, values: dict[str, Any], now: datetime) -> bool:
        """Claim one event id (a row of `processed_events`): True if this caller won it."""
        return (await self.claim_many([values], now))[0]

    async def claim_many(
        self, rows: Sequence[dict[str, Any]], now: datetime, *, hold: dict[str, Any] | None = None
    ) -> list[bool]:
        """Claim several ids in one transaction (queued together: one batch); whether each was won.

        `hold`: the first id's event will be answered; its `pending_answers` row (see `_holds`).
        A caller that stops waiting (a timeout) does not withdraw its claims: they still count for the
        other replicas.
        """
        writes = [self._queue(processed_events, values, now, claim=True) for values in rows]
        if hold is not None and writes:
            writes[0].hold = hold
            writes[0].group = tuple(writes[1:])
        results = await asyncio.gather(*(write.future for write in writes), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [bool(result) for result in results]

    def record(self, table: Table, values: dict[str, Any], now: datetime, *, op: str = INSERT) -> None:
        """Queue a record (a question, a vote, a pick); written within DEFER_SECONDS, errors logged.
        `op`: UPDATE or DELETE the row `values` names by its primary key instead of inserting one."""
        self._queue(table, values, now, claim=False, op=op)

    async def record_now(self, table: Table, values: dict[str, Any], now: datetime, *, op: str) -> bool:
        """A record written at once (with whatever else is queued, as a claim is): whether it was."""
        write = self._queue(table, values, now, claim=False, op=op)
        self._records_due = asyncio.get_running_loop().time()
        self._wakeup.set()
        return await asyncio.shield(write.future)  # a caller that gives up leaves the write to go on

    async def flush(self) -> None:
        """Write the records queued so far (the store's reads see them)."""
        pending = [write.future for write in (*self._writing, *self._records) if not write.claim]
        if self._records:
            self._flush_now = True
            self._wakeup.set()
        if pending:  # `wait`, not `gather`: a reader that gives up must not cancel the records
            await asyncio.wait(pending)

    async def close(self) -> None:
        """Write everything queued, then stop the writer."""
        self._closed = True
        self._wakeup.set()
        if self._writer is not None:
            await self._writer

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake the writer when the queued records are due (`_records_due`)."""
        self._disarm()
        self._due_timer = loop.call_at(self._records_due, self._due)

    def _due(self) -> None:
        self._due_timer = None  # fired: the writer arms another if what it finds is not due yet
        self._wakeup.set()

    def _disarm(self) -> None:
        if self._due_timer is not None:
            self._due_timer.cancel()
            self._due_timer = None

    def _records_ready(self, loop: asyncio.AbstractEventLoop) -> bool:
        return bool(self._records) and (
            self._closed
            or self._flush_now
            or len(self._records) >= MAX_BATCH
            or loop.time() >= self._records_due
        )

    async def _write_until_closed(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._claims or self._records_ready(loop):
                batch = [self._claims.popleft() for _ in range(min(MAX_BATCH, len(self._claims)))]
                room = min(MAX_BATCH - len(batch), len(self._records))
                batch += [self._records.popleft() for _ in range(room)]
                if not self._records:
                    self._flush_now = False
                    self._disarm()
                elif room:  # the records left are the newest: their own wait starts now
                    self._records_due = loop.time() + self._defer_seconds
                    self._arm(loop)
                self._writing = batch
                try:
                    await self._commit(batch)
                finally:
                    self._writing = []
                continue
            if self._closed:
                self._disarm()
                return
            self._wakeup.clear()
            if self._records and self._due_timer is None:  # (records queued before a write failed)
                self._arm(loop)
            await self._wakeup.wait()  # a claim, a flush, closing, or the records' timer

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
            self._fail(batch, exc)
            return
        except Exception as exc:  # the writer must outlive a bug, or every later write would hang
            log.exception("unexpected error while %s", what)
            self._fail(batch, StoreError(f"unexpected error while {what}: {exc!r}"))
            return
        for write in batch:
            if not write.future.done():
                write.future.set_result(write in won if write.claim else True)

    @staticmethod
    def _fail(batch: list[_Write], error: StoreError) -> None:
        """Fail each claim with its own copy of `error` (an exception raised in many tasks would collect
        all their tracebacks); a record has no caller waiting for it: its loss is logged."""
        lost = [write for write in batch if not write.claim]
        if lost:
            log.error("%d record(s) not written: %s", len(lost), error)
        for write in batch:
            if write.future.done():
                continue
            if write.claim:
                copy = StoreError(str(error))
                copy.__cause__ = error.__cause__
                write.future.set_exception(copy)
            else:
                write.future.set_result(False)
