"""Fixtures for the store and the tip scheduler: a database (SQLite file, and real PostgreSQL) and a
clock the test moves by hand; and, for the insights report, a store and a log filled the way the bot
fills it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from bot.conversation import Conversation, ReplyKind
from bot.knowledge import KnowledgeBase
from bot.knowledge_loader import load_knowledge
from bot.report import Report, build_report
from bot.store import Store
from tests.conftest import write_kb

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
OSLO = ZoneInfo("Europe/Oslo")
ANSWER, SUGGESTIONS, FALLBACK = ReplyKind.ANSWER, ReplyKind.SUGGESTIONS, ReplyKind.FALLBACK


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: an SQLite file in tmp_path, or a fresh schema of PostgreSQL's `test` database
    (selected through the URL's libpq `options`, the way a deployment could), dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'policybot.db'}"
        return
    async with postgres_schema("test") as url:
        yield url


@contextlib.asynccontextmanager
async def postgres_schema(prefix: str) -> AsyncIterator[str]:
    """The URL of a fresh schema of PostgreSQL's `test` database, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_SERVER)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


class Clock:
    """The time, as far as the code under test knows; tests set and advance it in Oslo wall-clock time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    @staticmethod
    def oslo(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
        """A wall-clock time in Oslo, as the aware UTC datetime the code receives."""
        return datetime(year, month, day, hour, minute, tzinfo=OSLO).astimezone(UTC)

    def at(self, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
        self.now = self.oslo(year, month, day, hour, minute)
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(Clock.oslo(2028, 5, 15, 8, 0))  # a Monday morning; 17 May 2028 is Constitution Day


# ------------------------------------------------------------------------- the insights report


@pytest.fixture
async def kb(tiny_kb_dir: Path) -> KnowledgeBase:
    return await load_knowledge(tiny_kb_dir)


@pytest.fixture
async def store(database_url: str, clock: Clock) -> AsyncIterator[Store]:
    store = await Store.open(database_url, clock=clock)
    yield store
    await store.close()


async def ask(
    store: Store, question: str, outcome: ReplyKind, entry_id: str | None = None, lang: str = "en"
) -> None:
    await store.record_question(question, lang, outcome, entry_id, 0.5 if outcome is ANSWER else 0.1)


async def fill(store: Store, clock: Clock) -> None:
    """Three weeks of questions: the first week is before the `--since` used by some tests."""
    clock.at(2028, 5, 2, 10)  # week of 1 May
    await ask(store, "can i post on tiktok about work", FALLBACK)
    await ask(store, "Can I add my boss on Facebook?", ANSWER, "friend-manager")
    clock.at(2028, 5, 9, 10)  # week of 8 May
    for _ in range(3):
        await ask(store, "Can I add my manager on Facebook?", ANSWER, "friend-manager")
    await ask(store, "Can I post on TikTok about work?", FALLBACK)
    await ask(store, "can i post on tik tok about work??", SUGGESTIONS, "workplace-photos")
    await ask(store, "what is the dress code for the christmas party", FALLBACK)
    clock.at(2028, 5, 16, 10)  # week of 15 May
    await ask(store, "Can I post photos from work?", ANSWER, "workplace-photos")
    await ask(store, "selfie at the office?", ANSWER, "workplace-photos")
    await ask(store, "Dress code for the Christmas party?", FALLBACK)
    await ask(store, "can I wear the company logo at a protest", FALLBACK)
    await ask(store, "can I wear the company logo at a demonstration", FALLBACK)
    await ask(store, "can <@U0SECRET01> post photos of me? ask kari.nordmann@example.com", FALLBACK)
    await ask(store, "Should @ola see this? call +47 912 34 567", SUGGESTIONS, "friend-manager")
    for helpful in (True, False, False, False):
        await store.record_feedback("friend-manager", helpful)
    for _ in range(2):
        await store.record_feedback("workplace-photos", True)
    await store.record_suggestion_pick("can i friend my boss on snapchat", "friend-manager", "en")
    await store.record_suggestion_pick("Can I friend my boss on Snapchat?", "friend-manager", "en")
    await store.record_suggestion_pick("Kan jeg legge til sjefen min på Facebook?", "friend-manager", "nb")
    await store.record_suggestion_pick("may I film in the canteen", "workplace-photos", "en")
    await store.record_suggestion_pick("something about a deleted entry", "no-longer-here", "en")


async def report_of(store: Store, kb: KnowledgeBase, clock: Clock, since: date | None = None) -> Report:
    return await build_report(store, kb, since=since, now=clock.at(2028, 5, 17, 12))


@pytest.fixture
async def all_about_work(tmp_path: Path) -> Conversation:
    """Three entries whose examples all speak of posting about work; "photos" has "can I post about
    work?" word for word, so a question of only those words matches it perfectly yet fits all three."""

    def entry(topic: str, en: list[str]) -> str:
        return f"""
          - id: {topic}
            title: {{en: "{topic.title()}", nb: "{topic.title()}"}}
            questions: {{en: {en}, nb: {[q + " (nb)" for q in en]}}}
            answer: {{en: "About {topic}.", nb: "Om {topic}."}}"""

    entries = "entries:" + "".join(
        entry(topic, [f"can I post about {topic} from work?", f"is posting about {topic} at work ok?"])
        for topic in ("salaries", "customers")
    )
    entries += entry("photos", ["can I post about work?", "may I post photos from work?"])
    return Conversation(await load_knowledge(write_kb(tmp_path / "all-about-work", entries)))
