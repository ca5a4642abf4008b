"""Where "Ask HR" threads lead back to: how to reach the asker of each HR thread, never the question."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.database import dialect_insert, escalation_routes
from bot.store_base import StoreBase


@dataclass(frozen=True)
class EscalationRoute:
    """How to reach the employee behind an "Ask HR" thread (see `escalation_routes`)."""

    platform: str
    thread_id: str
    route: dict[str, Any]
    lang: str


class EscalationStore(StoreBase):
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
            stmt = dialect_insert(conn, escalation_routes).values(
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
