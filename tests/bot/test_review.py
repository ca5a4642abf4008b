"""Answers due for review: which entries, the notice HR gets, and that it is posted once a week across
replicas (a real store: SQLite file, and PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.knowledge import KnowledgeBase
from bot.knowledge_loader import load_knowledge
from bot.review import ReviewReminder, stale_entries, stale_notice
from bot.store import Store
from tests.conftest import ENTRIES, write_kb

OSLO = ZoneInfo("Europe/Oslo")


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), OSLO)


async def test_an_entry_reviewed_more_than_a_year_ago_is_due(kb: KnowledgeBase) -> None:
    # friend-manager was reviewed 2026-11-01; workplace-photos has no date and is never "due"
    assert stale_entries(kb, date(2027, 11, 1)) == []
    [due] = stale_entries(kb, date(2027, 11, 2))
    assert (due.entry_id, due.title, due.reviewed, Path(due.file).name) == (
        "friend-manager",
        "Adding your manager on social media",
        date(2026, 11, 1),
        "entries.yaml",
    )


async def test_the_notice_is_hr_s_sentence_with_one_line_per_entry(kb: KnowledgeBase) -> None:
    assert stale_notice(kb, "nb", date(2027, 1, 1)) is None

    notice = stale_notice(kb, "nb", date(2028, 1, 1))

    assert notice is not None
    first, line = notice.splitlines()
    assert first.startswith("📅 1 svar ble sist gjennomgått for mer enn 12 måneder siden")  # shipped wording
    assert line.startswith(
        "• Legge til lederen din i sosiale medier (`friend-manager`): 2026-11-01, `entries.yaml:"
    )


class Posted:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, text_in: object) -> None:
        assert callable(text_in)
        self.texts.append(text_in("en"))


async def test_the_weekly_notice_is_posted_once_per_week_whichever_replica_runs(
    kb: KnowledgeBase, store: Store
) -> None:
    replicas = [ReviewReminder(lambda: kb, store, tz=OSLO, at=time(9, 0)) for _ in range(3)]
    posted = Posted()
    for replica in replicas:
        replica.on_notice(posted)
    monday = date(2028, 5, 15)

    assert [await r.run_once(at(monday, 8)) for r in replicas] == [False, False, False]  # before 09:00
    assert [await r.run_once(at(monday, 10)) for r in replicas] == [True, False, False]
    assert [await r.run_once(at(date(2028, 5, 18), 10)) for r in replicas] == [False, False, False]
    assert [await r.run_once(at(date(2028, 5, 22), 9)) for r in replicas].count(True) == 1  # next week
    assert len(posted.texts) == 2
    assert posted.texts[0].startswith("📅 1 answer(s) were last reviewed more than 12 months ago")
    assert "\n• Adding your manager on social media (`friend-manager`): 2026-11-01" in posted.texts[0]


async def test_nothing_is_posted_or_claimed_when_every_answer_is_fresh(tmp_path: Path, store: Store) -> None:
    fresh = await load_knowledge(write_kb(tmp_path / "k", ENTRIES.replace("2026-11-01", "2028-05-01")))
    reminder = ReviewReminder(lambda: fresh, store, tz=OSLO)
    posted = Posted()
    reminder.on_notice(posted)

    assert await reminder.run_once(at(date(2028, 5, 15), 10)) is False
    assert posted.texts == []
    assert await store.claim_event("review-notice:2028-W20") is True  # the week was not used up
