"""What every part of the store shares: the database, one-transaction runs, the group commit, the clock.

bot/store.py puts the parts together (`Store`); each part is a module of its own, named after what it
keeps: bot/store_events.py (claimed event ids), bot/store_insights.py (questions and feedback),
bot/store_tips.py (tip posts), bot/store_escalations.py ("Ask HR" routes), bot/store_installs.py
(conversations the bot is installed in). Tables, migrations and where an operation runs (`Database`)
are in bot/database.py: an operation is a plain function of a blocking SQLAlchemy `Connection`.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.database import Database
from bot.errors import StoreError
from bot.group_commit import GroupCommit
from bot.sqlite_writer import Batch

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _store_error(what: str, exc: Exception) -> StoreError:
    if isinstance(exc, OSError):
        return StoreError(f"could not reach the database while {what}: {exc}")
    return StoreError(f"database error while {what}: {exc}")


class StoreBase:
    """The database handle the parts of the store run their operations on."""

    def __init__(
        self,
        database: Database,
        *,
        retention_days: int,
        clock: Callable[[], datetime],
        tz: tzinfo = UTC,
        secret: str = "",
    ) -> None:
        self._database = database
        # The key of the claim keys' hash (see `claim_key`): the platforms' secrets, never stored here.
        self._hash_key = hashlib.blake2b(secret.encode(), digest_size=32).digest()
        self.retention_days = retention_days
        self._clock = clock
        self.tz = tz  # the local time zone: a vote is dated by the day it was given there
        self._writes = GroupCommit(self._run_batch)

    def claim_key(self, event_id: str) -> str:
        """What an event id is stored as: a keyed hash (32 hex digits) that names no channel or person."""
        return hashlib.blake2b(event_id.encode(), key=self._hash_key, digest_size=16).hexdigest()

    @property
    def write_engine(self) -> Engine:
        """The blocking engine the store's transactions begin on, the group commit's among them (for
        diagnostics: counting them with an event listener)."""
        return self._database.engine

    async def _run(self, what: str, operation: Callable[[Connection], T]) -> T:
        """Run `operation` in one transaction, after the records still queued (so reads see them),
        never on the event loop; database trouble becomes a StoreError."""
        if self._writes.unwritten_records:
            await self._writes.flush()
        try:
            return await self._database.run(operation)
        except (SQLAlchemyError, OSError, sqlite3.Error) as exc:
            raise _store_error(what, exc) from exc

    async def _run_batch(self, what: str, batch: Batch[Any]) -> Any:
        """Run a group-commit batch in one transaction. On SQLite (see SQLiteWriter) its statements go
        straight to sqlite3 (whose errors are database errors too), on the event loop when the write lock
        is free, else on the connection's thread."""
        try:
            return await self._database.run_batch(batch)
        except (SQLAlchemyError, OSError, sqlite3.Error) as exc:
            raise _store_error(what, exc) from exc
