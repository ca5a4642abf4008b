"""What HR learns from: questions (masked), votes and picked suggestions, never who asked; and their
deletion after the retention period.

Privacy: questions and suggestion picks are stored with their text (masked: `bot.privacy.mask`),
language and time only — never with who asked — and deleted after `retention_days`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, select

from bot.conversation import Recorder, ReplyKind
from bot.database import escalation_routes, feedback, processed_events, questions, suggestion_picks
from bot.privacy import mask
from bot.store_base import StoreBase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoggedQuestion:
    """One recorded question, as HR's report reads it (no identity: there is none to read)."""

    asked_at: datetime
    question: str
    lang: str
    outcome: str  # a ReplyKind value: "answer", "suggestions" or "fallback"
    entry_id: str | None  # the entry answered, or the matcher's best guess
    confidence: float


@dataclass(frozen=True)
class LoggedPick:
    """A "did you mean" suggestion someone picked: `question` is a candidate example for `entry_id`."""

    at: datetime
    question: str
    entry_id: str
    lang: str


class InsightStore(StoreBase, Recorder):
    """The `Recorder` the conversation writes to, and the reads HR's report makes (bot/report.py).

    Records are queued, not awaited: written with the next claims' transaction or within a second
    (bot/group_commit.py), after the answer they belong to; every read sees them (`StoreBase._run`
    writes them first), and `close` writes what is left.
    """

    def _hour(self, moment: datetime) -> datetime:
        """The hour `moment` falls in (local time): when a question was asked is kept no finer than
        that, so that nothing else the bot keeps with a time (a claim, an escalation) can be matched
        with it. The report counts by day and week."""
        return moment.astimezone(self.tz).replace(minute=0, second=0, microsecond=0)

    async def record_question(
        self, question: str, lang: str, outcome: ReplyKind, entry_id: str | None, confidence: float
    ) -> None:
        now = self._clock()
        values = {
            "asked_at": self._hour(now),
            "question": mask(question),
            "lang": lang,
            "outcome": str(outcome),
            "entry_id": entry_id,
            "confidence": confidence,
        }
        self._writes.record(questions, values, now)

    async def record_feedback(self, entry_id: str, helpful: bool) -> None:
        now = self._clock()
        day = now.astimezone(self.tz).date()
        self._writes.record(feedback, {"entry_id": entry_id, "helpful": helpful, "day": day}, now)

    async def record_suggestion_pick(self, question: str, entry_id: str, lang: str) -> None:
        now = self._clock()
        values = {"at": self._hour(now), "question": mask(question), "entry_id": entry_id, "lang": lang}
        self._writes.record(suggestion_picks, values, now)

    async def feedback_counts(self, *, since: date | None = None) -> dict[str, tuple[int, int]]:
        """entry id -> (helpful votes, unhelpful votes), counting votes given on or after `since`."""

        def op(conn: Connection) -> dict[str, tuple[int, int]]:
            query = (
                select(feedback.c.entry_id, feedback.c.helpful, func.count())
                .group_by(feedback.c.entry_id, feedback.c.helpful)
                .order_by(feedback.c.entry_id)
            )
            if since is not None:
                query = query.where(feedback.c.day >= since)
            counts: dict[str, tuple[int, int]] = {}
            for entry_id, helpful, n in conn.execute(query):
                yes, no = counts.get(entry_id, (0, 0))
                counts[entry_id] = (yes + n, no) if helpful else (yes, no + n)
            return counts

        result: dict[str, tuple[int, int]] = await self._run("counting feedback", op)
        return result

    async def questions(self, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Recorded questions, newest first (for HR's reports)."""

        def op(conn: Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                select(questions).order_by(questions.c.asked_at.desc(), questions.c.id.desc()).limit(limit)
            )
            return [dict(r._mapping) for r in rows]

        result: list[dict[str, Any]] = await self._run("reading questions", op)
        return result

    async def suggestion_picks(self) -> list[dict[str, Any]]:
        def op(conn: Connection) -> list[dict[str, Any]]:
            rows = conn.execute(select(suggestion_picks).order_by(suggestion_picks.c.at))
            return [dict(r._mapping) for r in rows]

        result: list[dict[str, Any]] = await self._run("reading suggestion picks", op)
        return result

    async def purge(self) -> int:
        """Delete questions and suggestion picks older than the retention, and expired event ids.

        Returns how many questions and picks were deleted.
        """
        now = self._clock()
        horizon = now - timedelta(days=self.retention_days)

        def op(conn: Connection) -> int:
            gone_questions = conn.execute(delete(questions).where(questions.c.asked_at < horizon))
            gone_picks = conn.execute(delete(suggestion_picks).where(suggestion_picks.c.at < horizon))
            conn.execute(delete(processed_events).where(processed_events.c.expires_at <= now))
            conn.execute(delete(escalation_routes).where(escalation_routes.c.expires_at <= now))
            return int(gone_questions.rowcount) + int(gone_picks.rowcount)

        purged: int = await self._run("purging old questions", op)
        if purged:
            log.info("purged %d question record(s) older than %d days", purged, self.retention_days)
        return purged

    async def question_log(self, *, since: datetime | None = None) -> list[LoggedQuestion]:
        """Every recorded question asked at or after `since`, oldest first."""

        def op(conn: Connection) -> list[LoggedQuestion]:
            query = select(questions).order_by(questions.c.asked_at, questions.c.id)
            if since is not None:
                query = query.where(questions.c.asked_at >= since)
            return [
                LoggedQuestion(r.asked_at, r.question, r.lang, r.outcome, r.entry_id, r.confidence)
                for r in conn.execute(query)
            ]

        result: list[LoggedQuestion] = await self._run("reading the question log", op)
        return result

    async def pick_log(self, *, since: datetime | None = None) -> list[LoggedPick]:
        """Every picked "did you mean" suggestion at or after `since`, oldest first."""

        def op(conn: Connection) -> list[LoggedPick]:
            query = select(suggestion_picks).order_by(suggestion_picks.c.at, suggestion_picks.c.id)
            if since is not None:
                query = query.where(suggestion_picks.c.at >= since)
            return [LoggedPick(r.at, r.question, r.entry_id, r.lang) for r in conn.execute(query)]

        result: list[LoggedPick] = await self._run("reading suggestion picks", op)
        return result
