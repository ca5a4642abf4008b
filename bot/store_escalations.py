"""Where "Ask HR" threads lead back to: how to reach the asker of each HR thread, never the question.

A route names a person, so nothing in it may date the escalation closely enough to be matched with the
question it followed (`questions.asked_at`): an HR thread's id is its post's time (Slack's `ts`, Teams'
message id), so it is kept hashed, and a route's expiry is rounded up to a whole day (UTC).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, select

from bot.database import dialect_insert, escalation_routes
from bot.store_base import StoreBase


def thread_key(thread_id: str) -> str:
    """What an HR thread is filed under: a hash of its id, which is the time HR got the question."""
    return "sha256:" + hashlib.sha256(thread_id.encode()).hexdigest()


def whole_day_after(moment: datetime) -> datetime:
    """`moment` rounded up to the next midnight (UTC), so that it tells the day only."""
    midnight = datetime.combine(moment.date(), time(), tzinfo=moment.tzinfo)
    return midnight if midnight == moment else midnight + timedelta(days=1)


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
        expires_at = whole_day_after(self._clock() + ttl)

        def op(conn: Connection) -> None:
            stmt = dialect_insert(conn, escalation_routes).values(
                platform=platform,
                thread_id=thread_key(thread_id),
                route=route,
                lang=lang,
                expires_at=expires_at,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["platform", "thread_id"],
                    set_={"route": stmt.excluded.route, "lang": stmt.excluded.lang, "expires_at": expires_at},
                )
            )

        await self._run("saving an escalation route", op)

    async def escalation(self, platform: str, thread_id: str) -> EscalationRoute | None:
        """The route for an HR thread, or None when it is not an escalation (or has expired)."""
        now = self._clock()

        def op(conn: Connection) -> EscalationRoute | None:
            row = (
                conn.execute(
                    select(escalation_routes).where(
                        escalation_routes.c.platform == platform,
                        # routes saved before ids were hashed are found by the plain id
                        escalation_routes.c.thread_id.in_([thread_key(thread_id), thread_id]),
                        escalation_routes.c.expires_at > now,
                    )
                )
            ).first()
            if row is None:
                return None
            return EscalationRoute(row.platform, thread_id, dict(row.route), row.lang)

        result: EscalationRoute | None = await self._run("reading an escalation route", op)
        return result
