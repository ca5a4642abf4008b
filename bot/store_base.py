"""What every part of the store shares: the engine, one-transaction runs, the group commit, the clock.

bot/store.py puts the parts together (`Store`); each part is a module of its own, named after what it
keeps: bot/store_events.py (claimed event ids), bot/store_insights.py (questions and feedback),
bot/store_tips.py (tip posts), bot/store_escalations.py ("Ask HR" routes), bot/store_installs.py
(conversations the bot is installed in). Tables, engine and migrations are in bot/database.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.errors import StoreError
from bot.group_commit import GroupCommit


def utcnow() -> datetime:
    return datetime.now(UTC)


class StoreBase:
    """The database handle the parts of the store run their operations on."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        retention_days: int,
        clock: Callable[[], datetime],
        tz: tzinfo = UTC,
    ) -> None:
        self._engine = engine
        self.retention_days = retention_days
        self._clock = clock
        self.tz = tz  # the local time zone: a vote is dated by the day it was given there
        self._writes = GroupCommit(self._run)

    async def _run(self, what: str, operation: Callable[[AsyncConnection], Any]) -> Any:
        """Run `operation` in one transaction; database trouble becomes a StoreError."""
        try:
            async with self._engine.begin() as conn:
                return await operation(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"database error while {what}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"could not reach the database while {what}: {exc}") from exc
