"""The group commit: the writes on every message's path, many callers to one transaction.

Event-id claims, questions, feedback and suggestion picks are queued; whatever is queued while one
transaction runs is written by the next one, a single transaction for many callers, so the database
round trips stop growing with the message rate. The tables are in bot/database.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.database import dialect_insert, processed_events
from bot.errors import StoreError

log = logging.getLogger(__name__)

# Most writes one group-commit transaction takes; keeps statements far below SQLite's and PostgreSQL's
# bound-parameter limits (32766 / 32767) and one transaction short.
MAX_BATCH = 200

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
