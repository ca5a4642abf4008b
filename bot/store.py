"""What the bot remembers across restarts and shares between replicas: the `Store`.

One object over one database, made of a part per concern, each in its own module:
- bot/store_events.py — event ids already handled (Slack retries, Teams redeliveries);
- bot/store_pending.py — questions acknowledged and not answered yet (answered by another process if
  this one dies);
- bot/store_insights.py — what HR learns from: questions, feedback, picked suggestions (the `Recorder`);
- bot/store_tips.py — the daily tips' bookkeeping;
- bot/store_escalations.py — the "Ask HR" reply routes;
- bot/store_installs.py — the conversations the bot is installed in (Teams references).
Their users depend on the part they need (the router on escalations and installs, the report on
insights, the tips on tip posts). How it talks to the database (tables, where operations run,
migrations) is bot/database.py, the group commit of the per-message writes bot/group_commit.py; what the
parts share is bot/store_base.py.

Privacy: questions and suggestion picks are stored with their text (masked: `bot.privacy.mask`), language
and time only — never with who asked — and deleted after `retention_days`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from bot.database import Database, migrate
from bot.store_base import utcnow
from bot.store_escalations import EscalationRoute, EscalationStore
from bot.store_events import EventStore
from bot.store_insights import InsightStore, LoggedPick, LoggedQuestion
from bot.store_installs import InstallStore, StoredReference
from bot.store_pending import PendingAnswer, PendingStore
from bot.store_tips import TipPost, TipStatus, TipStore


class Store(EventStore, PendingStore, InsightStore, TipStore, EscalationStore, InstallStore):
    """The database, behind the few operations the bot needs. Create it with `await Store.open(url)`."""

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        retention_days: int = 90,
        clock: Callable[[], datetime] = utcnow,
        tz: tzinfo = UTC,
        secret: str = "",
    ) -> Store:
        """Open (and migrate) the database. `tz` dates the feedback votes: the report's `since` is a
        local day, so a vote at 00:30 in Oslo must count for that Oslo day, not the UTC one before.
        `secret` keys the hash event ids are stored as (bot/store_events.py): the same in every replica.
        """
        database = Database(url)
        try:
            await migrate(database)
        except BaseException:
            await database.close()
            raise
        return cls(database, retention_days=retention_days, clock=clock, tz=tz, secret=secret)

    async def close(self) -> None:
        """Write everything still queued, then release the database connections."""
        try:
            await self._writes.close()
        finally:
            await self._database.close()

    @property
    def dialect(self) -> str:
        return self._database.dialect

    @property
    def database(self) -> Database:
        """The database (for diagnostics and tests: `await store.database.run(operation)`)."""
        return self._database


__all__ = [
    "EscalationRoute",
    "LoggedPick",
    "LoggedQuestion",
    "PendingAnswer",
    "Store",
    "StoredReference",
    "TipPost",
    "TipStatus",
    "utcnow",
]
