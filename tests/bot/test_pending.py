"""No acknowledged question is lost: a process dies between the ack and the answer, and another answers.

Each `Replica` is a process of the bot (its own store connection, router, in-memory platform and
sweeper) over one database, SQLite or PostgreSQL; the clock is moved by hand past a lease instead of
waiting for it. A "dead" replica is one that acknowledged a question and never answered it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.claims import Claims
from bot.config import Settings
from bot.conversation import Conversation, ReplyKind
from bot.database import pending_answers, processed_events
from bot.errors import ConfigError
from bot.knowledge import KnowledgeBase
from bot.memory import Chat, MemoryPlatform, Sent
from bot.pending import MAX_ATTEMPTS, Sweeper
from bot.platform import Posted, Question
from bot.router import Router
from bot.store import Store
from tests.bot.conftest import Clock

LEASE = timedelta(seconds=60)
ADMIN = "U0ADMIN"
QUESTION = "can I add my boss on fb?"


@dataclass
class Replica:
    store: Store
    router: Router
    platform: MemoryPlatform
    sweeper: Sweeper

    def chat(self, *, who: str = "U1", conversation: str = "dm-1") -> Chat:
        return Chat(self.router, self.platform, who=who, conversation=conversation)

    async def sweep(self) -> list[Sent]:
        await self.sweeper.sweep()
        return self.platform.take()


StartReplica = Callable[[], Awaitable[Replica]]


@pytest.fixture
async def replica(database_url: str, clock: Clock, kb: KnowledgeBase) -> AsyncIterator[StartReplica]:
    started: list[Store] = []

    async def start() -> Replica:
        store = await Store.open(database_url, clock=clock, secret="signing-secret")
        started.append(store)
        conversation = Conversation(kb, recorder=store)
        router = Router(conversation, admins=frozenset({ADMIN}), claims=Claims(store, lease=LEASE))
        platform = MemoryPlatform(name="memory")
        router.attach(platform)
        return Replica(store, router, platform, Sweeper(store, router, every=15))

    yield start
    for store in started:
        await store.close()


async def test_an_answered_question_leaves_nothing_in_progress(replica: StartReplica) -> None:
    bot = await replica()
    [answer] = await bot.chat().ask(QUESTION, delivery="Ev1")
    assert answer.text.startswith("Yes, you may")
    assert await bot.store.pending_count() == 0
    assert await bot.chat().ask(QUESTION, delivery="Ev1") == []  # Slack's retry of it


async def test_a_question_its_process_died_on_is_answered_once_by_a_replica_after_the_lease(
    replica: StartReplica, clock: Clock
) -> None:
    dead, alive = await replica(), await replica()
    assert await dead.chat().acknowledged(QUESTION, delivery="Ev1")
    assert await alive.sweep() == []  # the lease is live: the process may still be answering

    clock.advance(seconds=61)
    [answer] = await alive.sweep()
    assert (answer.kind, answer.to) == ("reply", "dm-1")
    assert answer.reply is not None and answer.reply.entry_id == "friend-manager"
    assert await alive.sweep() == []
    assert await alive.store.pending_count() == 0
    [logged] = await alive.store.question_log()  # recorded like any answered question
    assert (logged.question, logged.outcome) == (QUESTION, ReplyKind.ANSWER)


async def test_a_retry_is_dropped_while_the_lease_is_live_and_answered_once_it_has_expired(
    replica: StartReplica, clock: Clock
) -> None:
    dead, alive = await replica(), await replica()
    assert await dead.chat().acknowledged(QUESTION, delivery="Ev1")
    assert await alive.chat().ask(QUESTION, delivery="Ev1") == []  # Slack's first retry, seconds later

    clock.advance(minutes=5)  # Slack's last retry: the process that took it is gone
    [answer] = await alive.chat().ask(QUESTION, delivery="Ev1")
    assert answer.text.startswith("Yes, you may")
    assert await alive.sweep() == []  # taken over by the retry, and answered: nothing left
    assert await alive.chat().ask(QUESTION, delivery="Ev1") == []


async def test_the_retry_of_a_mention_taken_over_also_wins_the_mentions_own_claim(
    replica: StartReplica, clock: Clock
) -> None:
    """Slack claims an @mention's event id and its message together; the retry must win both."""
    dead, alive = await replica(), await replica()
    mention = ("slack-mention:C1:1.0", timedelta(days=7))

    async def deliver(bot: Replica) -> list[Sent]:
        event = Question(bot.chat().place, QUESTION, once=mention[0], delivery="Ev1")
        if await bot.router.first_delivery("Ev1", ahead=[mention], platform=bot.platform, question=event):
            await bot.router.question(bot.platform, event)
        return bot.platform.take()

    event = Question(dead.chat().place, QUESTION, once=mention[0], delivery="Ev1")
    assert await dead.router.first_delivery("Ev1", ahead=[mention], platform=dead.platform, question=event)
    assert await deliver(alive) == []
    clock.advance(seconds=61)
    assert len(await deliver(alive)) == 1
    assert await deliver(alive) == []


async def test_replicas_sweeping_at_once_post_each_left_question_once(
    replica: StartReplica, clock: Clock
) -> None:
    dead = await replica()
    for n in range(30):
        assert await dead.chat(conversation=f"dm-{n}").acknowledged(f"{QUESTION} {n}", delivery=f"Ev{n}")
    sweepers = [await replica() for _ in range(3)]
    clock.advance(seconds=61)
    swept = await asyncio.gather(*(bot.sweep() for bot in sweepers))
    posted = sorted(sent.to for one in swept for sent in one)
    assert posted == sorted(f"dm-{n}" for n in range(30))


async def test_a_post_whose_outcome_is_unknown_is_not_posted_again(
    replica: StartReplica, clock: Clock
) -> None:
    dead, alive = await replica(), await replica()
    assert await dead.chat().acknowledged(QUESTION, delivery="Ev1")
    clock.advance(seconds=61)
    alive.platform.later = [Posted.UNKNOWN]  # the request timed out after it was sent
    assert len(await alive.sweep()) == 1
    clock.advance(minutes=10)
    assert await alive.sweep() == []
    assert await alive.store.pending_count() == 0


async def test_a_post_that_certainly_failed_is_tried_again_a_few_times(
    replica: StartReplica, clock: Clock
) -> None:
    dead, alive = await replica(), await replica()
    assert await dead.chat().acknowledged(QUESTION, delivery="Ev1")
    assert await dead.chat(conversation="dm-2").acknowledged(QUESTION, delivery="Ev2")
    clock.advance(seconds=61)
    alive.platform.later = [Posted.TRY_LATER, Posted.REFUSED]  # rate limited; the bot was removed
    assert await alive.sweep() == []
    assert await alive.sweep() == []  # it waits a sweep's interval before trying again
    clock.advance(seconds=16)
    [answer] = await alive.sweep()
    assert answer.to in ("dm-1", "dm-2")
    assert await alive.store.pending_count() == 0

    assert await dead.chat().acknowledged(QUESTION, delivery="Ev3")
    clock.advance(seconds=61)
    alive.platform.later = [Posted.TRY_LATER] * MAX_ATTEMPTS
    for _ in range(MAX_ATTEMPTS):
        assert await alive.sweep() == []
        clock.advance(seconds=16)
    assert await alive.store.pending_count() == 0  # given up (and logged)


async def test_a_sweeper_that_died_while_posting_leaves_the_question_unposted_rather_than_twice(
    replica: StartReplica, clock: Clock
) -> None:
    dead, dead_sweeper, alive = await replica(), await replica(), await replica()
    assert await dead.chat().acknowledged(QUESTION, delivery="Ev1")
    clock.advance(seconds=61)
    [taken], _ = await dead_sweeper.store.take_expired(LEASE)
    assert await dead_sweeper.store.start_posting(taken)  # it was posting the answer, then died
    clock.advance(seconds=61)
    assert await alive.sweep() == []
    assert await alive.store.pending_count() == 0


async def test_a_sweeper_that_died_before_posting_leaves_the_question_to_the_next_one(
    replica: StartReplica, clock: Clock
) -> None:
    dead, dead_sweeper, alive = await replica(), await replica(), await replica()
    assert await dead.chat().acknowledged(QUESTION, delivery="Ev1")
    clock.advance(seconds=61)
    [taken], _ = await dead_sweeper.store.take_expired(LEASE)  # it took the question, then died
    assert await alive.sweep() == []  # its lease is live
    clock.advance(seconds=61)
    [answer] = await alive.sweep()
    assert answer.to == "dm-1"
    assert not await dead_sweeper.store.start_posting(taken)  # had it lived on: no longer its own


async def test_a_live_process_keeps_the_lease_of_an_answer_it_is_still_working_on(
    replica: StartReplica, clock: Clock
) -> None:
    slow, other = await replica(), await replica()
    assert await slow.chat().acknowledged(QUESTION, delivery="Ev1")  # Slack is slow to take the answer
    clock.advance(seconds=50)
    assert await slow.sweep() == []  # its own sweep renews the lease
    clock.advance(seconds=50)
    assert await other.sweep() == []
    assert await other.chat().ask(QUESTION, delivery="Ev1") == []


async def test_an_admins_message_is_not_kept_for_later(replica: StartReplica, clock: Clock) -> None:
    dead, alive = await replica(), await replica()
    assert await dead.chat(who=ADMIN).acknowledged("reload", delivery="Ev1", admin=True)
    assert await dead.store.pending_count() == 0  # a command is never run blind, later
    clock.advance(seconds=61)
    assert await alive.sweep() == []


async def test_the_database_holds_no_event_id_as_given_and_no_asker_beside_a_question(
    replica: StartReplica,
) -> None:
    dead = await replica()
    chat = dead.chat(who="U0PERSON", conversation="D0PERSON")
    assert await chat.acknowledged(QUESTION, delivery="slack-mention:C0GENERAL:1700000200.000200")
    claims = await dead.store.database.run(lambda conn: conn.execute(select(processed_events)).all())
    [pending] = await dead.store.database.run(
        lambda conn: conn.execute(select(pending_answers)).mappings().all()
    )
    [(key, expires_at)] = claims
    assert len(key) == 32 and "C0GENERAL" not in key and "1700000200" not in key
    assert (expires_at.minute, expires_at.second, expires_at.microsecond) == (0, 0, 0)
    assert "U0PERSON" not in repr(dict(pending))  # where to answer, never who asked
    assert pending["reference"] == {"conversation": "D0PERSON"}
    assert pending["question"] == QUESTION


async def test_a_replica_with_another_secret_keys_event_ids_differently(
    database_url: str, tmp_path: Path
) -> None:
    first = await Store.open(database_url, secret="one")
    second = await Store.open(database_url, secret="two")
    try:
        assert first.claim_key("Ev1") != second.claim_key("Ev1")
        assert first.claim_key("Ev1") == first.claim_key("Ev1")
    finally:
        await first.close()
        await second.close()


async def test_a_question_whose_answer_was_being_sent_when_its_process_died_is_not_answered_again(
    replica: StartReplica, clock: Clock
) -> None:
    dead, alive = await replica(), await replica()
    assert await dead.chat().acknowledged(QUESTION, delivery="Ev1")
    await dead.router.claims.posting("Ev1")  # the answer went out; the process died before hearing back
    clock.advance(minutes=5)
    assert await alive.chat().ask(QUESTION, delivery="Ev1") == []  # Slack's last retry
    assert await alive.sweep() == []
    assert await alive.store.pending_count() == 0  # dropped as "may have been posted"


def test_the_lease_and_the_sweep_are_read_from_the_environment_and_checked() -> None:
    settings = Settings.from_env(
        {"POLICYBOT_ANSWER_LEASE_SECONDS": "30", "POLICYBOT_PENDING_SWEEP_SECONDS": "0.5"}
    )
    assert (settings.answer_lease_seconds, settings.pending_sweep_seconds) == (30.0, 0.5)
    assert (Settings.from_env({}).answer_lease_seconds, Settings.from_env({}).pending_sweep_seconds) == (
        60,
        15,
    )
    with pytest.raises(ConfigError, match="POLICYBOT_PENDING_SWEEP_SECONDS must be shorter"):
        Settings.from_env({"POLICYBOT_ANSWER_LEASE_SECONDS": "10", "POLICYBOT_PENDING_SWEEP_SECONDS": "10"})
    with pytest.raises(ConfigError, match="POLICYBOT_ANSWER_LEASE_SECONDS='soon' must be a number"):
        Settings.from_env({"POLICYBOT_ANSWER_LEASE_SECONDS": "soon"})
