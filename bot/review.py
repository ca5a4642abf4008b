"""Answers due for review: entries whose `reviewed` date is more than a year old.

Employees still get those answers (a policy that has not changed is not wrong), but HR should look at
them. `stale_entries` lists them, oldest first; the insights report shows them, `kb check` warns about
them, and `ReviewReminder` posts `stale_notice` to the HR channel once a week, on the first run on or
after Monday at the tip time (local time), exactly once across replicas (the week is claimed in the
database the way a Slack event id is).

Platform-neutral: the router (bot/router.py) registers each platform's `tell_hr` with `on_notice`
when the platform has an HR conversation; the composition root (adapters/services.py) builds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol

from bot.knowledge import KnowledgeBase

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(days=365)
CHECK_EVERY = timedelta(hours=1)  # how often a replica looks whether this week's notice is due
NOTICE_WEEKDAY = 0  # Monday
SHOWN = 15  # entries listed in the chat notice; the report lists them all

# An adapter's way of posting to HR: it is given the notice in a language of its choosing.
PostToHr = Callable[[Callable[[str], str]], Awaitable[None]]


@dataclass(frozen=True)
class StaleEntry:
    entry_id: str
    title: str
    reviewed: date
    file: str
    line: int


def stale_entries(kb: KnowledgeBase, today: date, lang: str = "en") -> list[StaleEntry]:
    """Entries last reviewed more than `STALE_AFTER` before `today`, oldest review first."""
    found = [
        StaleEntry(
            entry.id,
            entry.title.get(lang) or next(iter(entry.title.values()), entry.id),
            entry.reviewed,
            entry.file,
            entry.line,
        )
        for entry in kb.entries.values()
        if entry.reviewed is not None and today - entry.reviewed > STALE_AFTER
    ]
    return sorted(found, key=lambda s: (s.reviewed, s.entry_id))


def stale_lines(stale: list[StaleEntry], limit: int = SHOWN) -> list[str]:
    """One markdown bullet per entry due for review: title, id, date and where to edit it."""
    lines = [
        f"• {s.title} (`{s.entry_id}`): {s.reviewed.isoformat()}, `{_file_name(s.file)}:{s.line}`"
        for s in stale[:limit]
    ]
    if len(stale) > limit:
        lines.append(f"• … +{len(stale) - limit} (`policybot kb check`)")
    return lines


def stale_notice(kb: KnowledgeBase, lang: str, today: date) -> str | None:
    """The weekly HR notice in `lang` (from messages.yaml), or None when nothing is due."""
    stale = stale_entries(kb, today, lang)
    if not stale:
        return None
    return "\n".join([kb.say("stale_notice", lang, count=str(len(stale))), *stale_lines(stale)])


def _file_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


class Claims(Protocol):
    async def claim_event(self, event_id: str, *, ttl: timedelta = ...) -> bool: ...


class ReviewReminder:
    """Posts the week's review notice to HR once, whichever replica gets there first."""

    def __init__(
        self,
        kb: Callable[[], KnowledgeBase],
        claims: Claims,
        *,
        tz: tzinfo,
        at: time = time(9, 0),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kb = kb
        self.claims = claims
        self.tz = tz
        self.at = at
        self.clock = clock
        self._posts: list[PostToHr] = []

    def on_notice(self, post: PostToHr) -> None:
        self._posts.append(post)

    def due_week(self, now: datetime) -> str | None:
        """This week's key ("2026-W49") once its notice is due: Monday at `at` (local) or later."""
        local = now.astimezone(self.tz)
        monday = local.date() - timedelta(days=local.weekday() - NOTICE_WEEKDAY)
        if local < datetime.combine(monday, self.at, self.tz):
            return None
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"

    async def run_once(self, now: datetime | None = None) -> bool:
        """Post this week's notice if it is due, there is something to review and nobody has; True if
        this replica posted it."""
        now = now or self.clock()
        week = self.due_week(now)
        if week is None or not self._posts:
            return False
        kb = self.kb()
        today = now.astimezone(self.tz).date()
        if not stale_entries(kb, today):
            return False
        if not await self.claims.claim_event(f"review-notice:{week}", ttl=timedelta(days=8)):
            return False  # another replica has (or had) it
        for post in self._posts:
            try:
                await post(lambda lang: stale_notice(kb, lang, today) or "")
            except Exception:  # one platform failing must not keep the notice from the other
                log.exception("could not post the review notice to HR")
        log.info("posted the review notice for %s", week)
        return True

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # the database being down must not stop the server; tried again later
                log.exception("review notice check failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_EVERY.total_seconds())
