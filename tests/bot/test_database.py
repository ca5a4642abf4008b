"""The database plumbing: migrations (also by replicas starting at once), DATABASE_URLs as hosting
platforms write them, clear errors, and the group commit of the writes on every message's path."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text

from bot.conversation import ReplyKind
from bot.database import HEAD_REVISION, Database, alembic_config, engine_url, metadata
from bot.errors import StoreError
from bot.group_commit import DEFER_SECONDS, MAX_BATCH
from bot.sqlite_writer import CHECKPOINT_EVERY
from bot.store import Store


async def run_sql(database_url: str, *statements: str) -> None:
    """Run SQL on the database from another connection (as another replica or an admin would), in one
    transaction."""
    database = Database(database_url)
    try:
        await database.run(lambda conn: [conn.execute(text(sql)) for sql in statements])
    finally:
        await database.close()


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


async def schema_of(database_url: str) -> tuple[list[object], str]:
    """How the database's schema differs from the code's (`metadata`), and its Alembic revision."""

    def compare(conn: Connection) -> tuple[list[object], str]:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
        return differences, conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()

    database = Database(database_url)
    try:
        return await database.run(compare)
    finally:
        await database.close()


async def test_the_migrations_build_exactly_the_schema_the_code_uses(database_url):
    database = Database(database_url)
    try:  # Alembic itself, from nothing to the newest migration
        await database.run(lambda conn: command.upgrade(alembic_config(conn), "head"))
    finally:
        await database.close()
    assert await schema_of(database_url) == ([], "0003")  # the newest migration (0003: pending answers)


async def test_a_new_database_is_built_as_the_migrations_would_and_stamped_at_the_newest(database_url):
    store = await Store.open(database_url)  # an empty database: built from the schema, no Alembic run
    await store.close()
    assert await schema_of(database_url) == ([], HEAD_REVISION)
    reopened = await Store.open(database_url)  # and later starts find it at the newest revision
    await reopened.close()


def test_the_head_revision_the_store_checks_is_the_newest_migration():
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD_REVISION]


OPEN_AND_LIST_MODULES = """
import asyncio, json, sys
from datetime import timedelta
from bot.store import Store
async def main():
    store = await Store.open(sys.argv[1])
    await store.claim_events([("ev-1", timedelta(hours=1))])  # an INSERT … ON CONFLICT of the dialect
    await store.close()
asyncio.run(main())
heavy = ("alembic", "sqlalchemy.dialects.postgresql", "sqlalchemy.ext.asyncio", "sqlalchemy.orm", "greenlet")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def modules_loaded(database_url: str) -> list[str]:
    """Open the store in a fresh interpreter (this one has them all loaded) and claim an event: which
    of Alembic, SQLAlchemy's PostgreSQL dialect and its async engine (asyncio extension, ORM, greenlet)
    were loaded."""
    done = subprocess.run(
        [sys.executable, "-c", OPEN_AND_LIST_MODULES, database_url],
        capture_output=True, text=True, timeout=60, check=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    return list(json.loads(done.stdout))


def alembic_was_loaded(database_url: str) -> bool:
    return "alembic" in modules_loaded(database_url)


def test_a_sqlite_store_never_loads_the_postgresql_dialect_or_the_async_engine(tmp_path):
    assert modules_loaded(f"sqlite:///{tmp_path}/bot.db") == []  # a new database, and then
    assert modules_loaded(f"sqlite:///{tmp_path}/bot.db") == []  # one already at the newest revision


async def test_alembic_is_loaded_only_when_the_schema_needs_a_migration(database_url):
    assert not alembic_was_loaded(database_url)  # a new database: built from the schema, stamped
    assert not alembic_was_loaded(database_url)  # at the newest revision: one SELECT, no Alembic
    await run_sql(
        database_url,
        "UPDATE alembic_version SET version_num = '0001'",
        "DROP TABLE escalation_routes",
        "DROP TABLE pending_answers",
    )
    assert alembic_was_loaded(database_url)  # one migration behind: migrated again
    assert not alembic_was_loaded(database_url)


async def test_replicas_starting_at_once_all_come_up_on_one_schema(database_url):
    stores = await asyncio.gather(*(Store.open(database_url) for _ in range(3)))
    try:
        claims = await asyncio.gather(*(s.claim_event("Ev1") for s in stores))
        assert sorted(claims) == [False, False, True]
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
    assert engine_url("sqlite:///policybot.db")[0].drivername == "sqlite"
    # as earlier versions (on aiosqlite) wrote it in their docs and defaults: SQLite's own driver now
    assert engine_url("sqlite+aiosqlite:///policybot.db")[0].render_as_string() == "sqlite:///policybot.db"

    with pytest.raises(StoreError, match="mysql"):
        engine_url("mysql://bot@db/policy")


@pytest.mark.postgres
async def test_a_postgres_url_as_heroku_writes_it_opens_the_store():
    schema = f"policybot_url_{uuid.uuid4().hex[:12]}"  # its own, so that parallel runs never meet
    url = f"postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    await run_sql(url, f'CREATE SCHEMA "{schema}"')
    try:
        store = await Store.open(url)
        assert store.dialect == "postgresql"
        assert await store.claim_event("Ev1") is True
        await store.close()
    finally:
        await run_sql(url, f'DROP SCHEMA "{schema}" CASCADE')


async def test_an_unreachable_database_is_a_clear_store_error(tmp_path: Path):
    with pytest.raises(StoreError, match="could not migrate"):
        await Store.open("postgresql://postgres@127.0.0.1:1/test")
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(StoreError, match="SQLite"):
        await Store.open(f"sqlite:///{blocked / 'policybot.db'}")


# -- group commit: the writes on every message's path share transactions --------------------------------


class TransactionCounter:
    """Counts the transactions the store's group commit begins (SQLAlchemy's own event hook), and the
    threads they run on."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        self.threads: set[str] = set()
        self._engine = store.write_engine

    def _begun(self, _connection: object) -> None:
        self.count += 1
        self.threads.add(threading.current_thread().name)

    def __enter__(self) -> TransactionCounter:
        event.listen(self._engine, "begin", self._begun)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self._engine, "begin", self._begun)


async def test_two_replicas_claiming_a_burst_of_the_same_ids_win_each_id_once(database_url):
    first = await Store.open(database_url)
    second = await Store.open(database_url)
    try:
        ids = [f"Ev{n:03d}" for n in range(60)]
        # Each replica sees every id, some twice (Slack's retries), all at the same moment.
        calls = [(store, event_id) for event_id in ids for store in (first, second, first)]
        results = await asyncio.gather(*(store.claim_event(event_id) for store, event_id in calls))
        winners: dict[str, int] = {}
        for (_store, event_id), won in zip(calls, results, strict=True):
            winners[event_id] = winners.get(event_id, 0) + won
        assert winners == dict.fromkeys(ids, 1)
    finally:
        await first.close()
        await second.close()


async def test_a_burst_of_writes_shares_a_few_transactions_and_every_caller_gets_its_answer(
    database_url, clock
):
    store = await Store.open(database_url, clock=clock)
    try:
        with TransactionCounter(store) as lone:
            assert await store.claim_event("Ev-alone") is True  # nothing else queued: written at once
        assert lone.count == 1

        with TransactionCounter(store) as burst:
            claims = asyncio.gather(*(store.claim_event(f"Ev{n}") for n in range(200)))
            records = asyncio.gather(
                *(store.record_question(f"q{n}", "en", ReplyKind.ANSWER, "photos", 0.9) for n in range(50)),
                store.record_feedback("photos", helpful=True),
                store.record_suggestion_pick("bilde", "photos", "nb"),
            )
            assert await claims == [True] * 200
            await records
        assert burst.count < 250 / 10

        assert await asyncio.gather(*(store.claim_event(f"Ev{n}") for n in range(0, 200, 20))) == [False] * 10
        clock.advance(hours=1, seconds=1)  # expired: each id may be claimed again, once
        again = await asyncio.gather(*(store.claim_event(f"Ev{n}") for n in [*range(20), *range(20)]))
        assert again == [True] * 20 + [False] * 20
        assert len(await store.questions()) == 50
        assert await store.feedback_counts() == {"photos": (1, 0)}
        assert len(await store.suggestion_picks()) == 1
    finally:
        await store.close()


async def test_an_events_claims_and_the_last_questions_share_one_transaction(database_url, clock):
    """Before an answer: one round trip for its claims together; the question rides along later."""
    store = await Store.open(database_url, clock=clock)
    try:
        await store.record_question("first question", "en", ReplyKind.ANSWER, "photos", 0.9)  # queued
        with TransactionCounter(store) as counted:
            won = await store.claim_events(
                [("Ev1", timedelta(hours=1)), ("slack-mention:C1:1.0", timedelta(days=7))]
            )
        assert won == [True, True]
        assert counted.count == 1
        if store.dialect == "sqlite":  # the write lock was free: written on the loop, no thread hop
            assert counted.threads == {threading.current_thread().name}
        assert await store.claim_events([("Ev1", timedelta(hours=1)), ("Ev2", timedelta(hours=1))]) == [
            False, True,
        ]  # fmt: skip
        assert [q["question"] for q in await store.questions()] == ["first question"]
    finally:
        await store.close()


async def test_while_another_connection_holds_sqlites_write_lock_the_loop_goes_on_and_the_claim_waits(
    tmp_path: Path,
):
    store = await Store.open(f"sqlite:///{tmp_path / 'policybot.db'}")
    other = sqlite3.connect(tmp_path / "policybot.db", isolation_level=None)  # another replica, say
    try:
        other.execute("BEGIN IMMEDIATE")
        with TransactionCounter(store) as counted:
            claim = asyncio.create_task(store.claim_event("Ev1"))
            await asyncio.sleep(0.2)  # the event loop is not blocked by the lock
            assert not claim.done()
            other.execute("COMMIT")
            assert await claim is True
        assert counted.threads == {"policybot-sqlite-writes_0"}  # it waited on the writer's thread
        assert await store.claim_event("Ev1") is False
    finally:
        other.close()
        await store.close()


async def test_the_wal_is_checkpointed_on_the_writers_thread_never_on_the_loop(tmp_path: Path):
    store = await Store.open(f"sqlite:///{tmp_path / 'policybot.db'}")
    try:
        with TransactionCounter(store) as loop:
            for n in range(CHECKPOINT_EVERY):
                assert await store.claim_event(f"Ev{n}") is True
        assert loop.threads == {threading.current_thread().name}
        with TransactionCounter(store) as due:  # the next batch goes to the thread, which checkpoints
            assert await store.claim_event("Ev-next") is True
        assert due.threads == {"policybot-sqlite-writes_0"}
        with TransactionCounter(store) as after:  # and the loop takes the batches again
            assert await store.claim_event("Ev-after") is True
        assert after.threads == {threading.current_thread().name}
    finally:
        await store.close()


async def test_a_question_with_no_claim_to_ride_with_is_written_within_a_second(database_url):
    store = await Store.open(database_url)
    try:
        with TransactionCounter(store) as counted:
            for n in range(3):
                await store.record_question(f"q{n}", "en", ReplyKind.ANSWER, "photos", 0.9)
            assert counted.count == 0  # nobody waits for it
            await asyncio.sleep(DEFER_SECONDS + 0.5)
        assert counted.count == 1
    finally:
        await store.close()


async def test_records_left_over_from_a_full_batch_are_written_within_a_second(database_url):
    store = await Store.open(database_url)
    try:
        with TransactionCounter(store) as counted:
            for n in range(MAX_BATCH + 10):  # a full batch goes at once; the ten left wait their turn
                await store.record_question(f"q{n}", "en", ReplyKind.ANSWER, "photos", 0.9)
            await asyncio.sleep(0.2)
            assert counted.count == 1
            await asyncio.sleep(DEFER_SECONDS + 0.5)
        assert counted.count == 2
    finally:
        await store.close()


async def test_a_failing_write_fails_its_own_callers_and_spares_the_rest_of_the_batch(database_url):
    store = await Store.open(database_url)
    try:
        await run_sql(database_url, "DROP TABLE processed_events")  # someone broke the event-id table
        results = await asyncio.gather(
            *(store.claim_event(f"Ev{n}") for n in range(30)),
            *(store.record_question(f"q{n}", "en", ReplyKind.FALLBACK, None, 0.1) for n in range(10)),
            return_exceptions=True,
        )
        claims, records = results[:30], results[30:]
        assert all(isinstance(r, StoreError) and "recording an event id" in str(r) for r in claims)
        assert records == [None] * 10
        assert len(await store.questions()) == 10
        await store.record_feedback("photos", helpful=False)  # the writer lives on
        assert await store.feedback_counts() == {"photos": (0, 1)}
    finally:
        await store.close()


async def test_closing_the_store_writes_what_is_still_queued(database_url):
    store = await Store.open(database_url)
    pending = [
        asyncio.create_task(store.record_question(f"q{n}", "nb", ReplyKind.ANSWER, "photos", 0.8))
        for n in range(40)
    ]
    await asyncio.sleep(0)  # every task has queued its write; none is written yet
    await store.close()
    assert [task.result() for task in pending] == [None] * 40
    with pytest.raises(StoreError, match="closed"):
        await store.claim_event("Ev-late")

    reopened = await Store.open(database_url)
    try:
        assert len(await reopened.questions()) == 40
    finally:
        await reopened.close()


async def test_a_failing_write_names_no_parameter_values_in_its_error_or_the_logs(database_url, caplog):
    """What people asked and where they chat must not reach the logs (or an admin's chat reply) when the
    database refuses a write: SQLAlchemy would otherwise quote the statement's parameters."""
    store = await Store.open(database_url)
    secret_question = "can Ola Nordmann film the quarterly numbers"
    secret_chat = "a:1PersonalChatOfKari"
    try:
        await run_sql(database_url, "DROP TABLE questions", "DROP TABLE conversation_references")
        with caplog.at_level("INFO"):  # the server's level
            await store.record_question(secret_question, "en", ReplyKind.FALLBACK, None, 0.1)  # queued
            with pytest.raises(StoreError) as reference_error:  # writes the question first: it fails
                await store.save_reference("teams", secret_chat, {"conversation": {"id": secret_chat}}, "en")
    finally:
        await store.close()
    assert "1 record(s) not written: database error while recording a question" in caplog.text
    assert "conversation reference" in str(reference_error.value)
    for shown in (str(reference_error.value), caplog.text):
        assert "Ola Nordmann" not in shown and "quarterly" not in shown
        assert secret_chat not in shown


async def test_a_search_path_schema_that_does_not_exist_is_named_without_any_sql():
    schema = f"policybot_missing_{uuid.uuid4().hex[:12]}"
    with pytest.raises(StoreError) as failure:
        await Store.open(f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}")

    assert str(failure.value) == (
        f"could not migrate the database: the schema in DATABASE_URL's search_path ({schema}) does not "
        f"exist; create it first (e.g. CREATE SCHEMA {schema};) or leave out the options"
    )


def test_an_unsupported_url_suggests_the_urls_the_docs_show():
    with pytest.raises(StoreError) as failure:
        engine_url("mysql://bot@db/policy")

    assert str(failure.value) == "DATABASE_URL uses 'mysql'; use sqlite:///file.db or postgresql://…"
