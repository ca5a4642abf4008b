"""The store: migrations, event dedupe across replicas, Teams references, feedback, retention."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.conversation import ReplyKind
from bot.errors import StoreError
from bot.store import Store, TipStatus, create_engine, engine_url, metadata


async def test_a_new_database_is_migrated_and_keeps_its_data_across_restarts(database_url, clock):
    store = await Store.open(database_url, clock=clock)
    await store.save_reference("teams", "19:general", {"serviceUrl": "https://smba.example"}, "nb")
    await store.record_feedback("photos", helpful=True)
    await store.close()

    reopened = await Store.open(database_url, clock=clock)  # runs the migrations again: nothing to do
    try:
        assert [r.conversation_id for r in await reopened.references("teams")] == ["19:general"]
        assert await reopened.feedback_counts() == {"photos": (1, 0)}
    finally:
        await reopened.close()


async def test_the_migrations_build_exactly_the_schema_the_code_uses(database_url):
    store = await Store.open(database_url)
    await store.close()
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    finally:
        await engine.dispose()
    assert differences == []
    assert version == "0001"


async def test_replicas_starting_at_once_all_come_up_on_one_schema(database_url):
    stores = await asyncio.gather(*(Store.open(database_url) for _ in range(3)))
    try:
        claims = await asyncio.gather(*(s.claim_event("Ev1") for s in stores))
        assert sorted(claims) == [False, False, True]
    finally:
        for store in stores:
            await store.close()


async def test_a_retried_slack_event_is_handled_by_one_replica_only(database_url, clock):
    first = await Store.open(database_url, clock=clock)
    second = await Store.open(database_url, clock=clock)
    try:
        results = await asyncio.gather(*(s.claim_event("Ev42") for s in [first, second] * 5))
        assert results.count(True) == 1
        assert await second.claim_event("Ev43") is True
        assert await first.claim_event("Ev43") is False

        clock.advance(hours=1, seconds=1)  # the retry window is over: the id may be claimed again
        assert await first.claim_event("Ev43", ttl=timedelta(minutes=5)) is True
        assert await second.claim_event("Ev43") is False
    finally:
        await first.close()
        await second.close()


async def test_teams_conversation_references_are_saved_updated_and_removed(database_url, clock):
    store = await Store.open(database_url, clock=clock)
    try:
        await store.save_reference("teams", "19:a", {"conversation": {"id": "19:a"}}, "en")
        await store.save_reference("teams", "19:b", {"conversation": {"id": "19:b"}}, "en")
        await store.save_reference("teams", "19:a", {"conversation": {"id": "19:a"}, "v": 2}, "nb")
        await store.save_reference("slack", "C1", {}, "en")

        teams = await store.references("teams")
        assert [(r.conversation_id, r.lang, r.reference.get("v")) for r in teams] == [
            ("19:a", "nb", 2),
            ("19:b", "en", None),
        ]
        await store.remove_reference("teams", "19:b")
        assert [r.conversation_id for r in await store.references("teams")] == ["19:a"]
        assert [r.conversation_id for r in await store.references("slack")] == ["C1"]
    finally:
        await store.close()


async def test_feedback_is_counted_per_entry(database_url):
    store = await Store.open(database_url)
    try:
        for entry_id, helpful in [("photos", True), ("photos", True), ("photos", False), ("manager", False)]:
            await store.record_feedback(entry_id, helpful)
        assert await store.feedback_counts() == {"manager": (0, 1), "photos": (2, 1)}
    finally:
        await store.close()


async def test_questions_are_kept_for_the_retention_period_without_who_asked(database_url, clock):
    store = await Store.open(database_url, retention_days=90, clock=clock)
    try:
        await store.record_question("can I post my badge?", "en", ReplyKind.FALLBACK, None, 0.12)
        await store.record_suggestion_pick("bilde av kontoret", "photos", "nb")
        clock.advance(days=60)
        await store.record_question("kan jeg filme?", "nb", ReplyKind.SUGGESTIONS, "photos", 0.55)

        clock.advance(days=31)  # the first question and the pick are now 91 days old
        assert await store.purge() == 2
        kept = await store.questions()
        assert [(q["question"], q["lang"], q["outcome"], q["entry_id"]) for q in kept] == [
            ("kan jeg filme?", "nb", "suggestions", "photos")
        ]
        assert await store.suggestion_picks() == []
        assert await store.purge() == 0
    finally:
        await store.close()

    # Privacy by construction: there is no column that could hold who asked.
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda sync: inspect(sync).get_columns("questions"))
    finally:
        await engine.dispose()
    assert {c["name"] for c in columns} == {
        "id",
        "asked_at",
        "question",
        "lang",
        "outcome",
        "entry_id",
        "confidence",
    }


async def test_purge_also_forgets_expired_event_ids(database_url, clock):
    store = await Store.open(database_url, clock=clock)
    try:
        await store.claim_event("Ev1", ttl=timedelta(minutes=10))
        clock.advance(minutes=11)
        await store.purge()
        assert await store.claim_event("Ev1") is True
    finally:
        await store.close()


async def test_only_one_replica_claims_a_tip_slot_and_only_one_sends_it(database_url, clock):
    stores = await asyncio.gather(*(Store.open(database_url) for _ in range(3)))
    try:
        claims = await asyncio.gather(
            *(
                s.claim_tip(
                    platform="slack",
                    target_id="C1",
                    lang="en",
                    day=date(2028, 5, 15),
                    slot="2028-05-15",
                    tip_id=f"tip-{n}",
                    cycle=0,
                    by=f"replica-{n}",
                    now=clock(),
                )
                for n, s in enumerate(stores)
            )
        )
        winners = [c for c in claims if c is not None]
        assert len(winners) == 1
        assert winners[0].status is TipStatus.PENDING

        sends = await asyncio.gather(
            *(s.begin_send(winners[0].id, by=f"replica-{n}", now=clock()) for n, s in enumerate(stores))
        )
        senders = [s for s in sends if s is not None]
        assert len(senders) == 1
        assert senders[0].status is TipStatus.SENDING
        assert senders[0].attempts == 1
        # Only the sender can record the outcome.
        impostor = "replica-x"
        assert not await stores[0].finish_send(
            winners[0].id, by=impostor, status=TipStatus.POSTED, now=clock()
        )
        assert await stores[0].finish_send(
            winners[0].id, by=senders[0].claimed_by, status=TipStatus.POSTED, now=clock()
        )
    finally:
        for store in stores:
            await store.close()


def test_database_urls_from_hosting_platforms_are_normalised():
    url, connect_args = engine_url("postgres://bot:secret@db.example:5433/policy?sslmode=require")
    assert url.drivername == "postgresql+asyncpg"
    assert (url.host, url.port, url.database, url.username) == ("db.example", 5433, "policy", "bot")
    assert dict(url.query) == {"ssl": "require"}
    assert connect_args == {}

    url, connect_args = engine_url("postgresql://bot@db/policy?options=-csearch_path%3Dpolicybot")
    assert url.drivername == "postgresql+asyncpg"
    assert connect_args == {"server_settings": {"search_path": "policybot"}}
    assert engine_url("postgresql+asyncpg://bot@db/policy")[0].drivername == "postgresql+asyncpg"
    assert engine_url("sqlite:///policybot.db")[0].drivername == "sqlite+aiosqlite"

    with pytest.raises(StoreError, match="mysql"):
        engine_url("mysql://bot@db/policy")


@pytest.mark.postgres
async def test_a_postgres_url_as_heroku_writes_it_opens_the_store():
    url = "postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dpolicybot_url_test"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS policybot_url_test CASCADE"))
        await conn.execute(text("CREATE SCHEMA policybot_url_test"))
    try:
        store = await Store.open(url)
        assert store.dialect == "postgresql"
        assert await store.claim_event("Ev1") is True
        await store.close()
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA policybot_url_test CASCADE"))
        await engine.dispose()


async def test_an_unreachable_database_is_a_clear_store_error(tmp_path: Path):
    with pytest.raises(StoreError, match="could not migrate"):
        await Store.open("postgresql://postgres@127.0.0.1:1/test")
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(StoreError, match="SQLite"):
        await Store.open(f"sqlite:///{blocked / 'policybot.db'}")
