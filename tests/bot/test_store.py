"""The store: event dedupe across replicas, Teams references, feedback, retention, tip slots."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, inspect, text

from bot.conversation import ReplyKind
from bot.database import Database
from bot.store import Store, StoredReference, TipStatus


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


def test_a_teams_reference_is_personal_unless_it_says_it_is_a_channel_or_group_chat() -> None:
    def reference(conversation_id: str, **conversation: str) -> StoredReference:
        return StoredReference(
            "teams", conversation_id, {"conversation": {"id": conversation_id, **conversation}}, "en"
        )

    assert reference("a:1Hq0chat", conversationType="personal").personal
    assert reference("a:1Hq0chat").personal  # Bot Framework leaves the type out of personal chats
    assert reference("a:1Hq0chat", conversationType="groupChat").personal  # the id says whose it is
    assert StoredReference("teams", "a:1Hq0chat", {}, "en").personal
    assert not reference("19:hr@thread.tacv2", conversationType="channel").personal
    assert not reference("19:abc@thread.v2", conversationType="groupChat").personal


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
    database = Database(database_url)
    try:
        columns = await database.run(lambda conn: inspect(conn).get_columns("questions"))
    finally:
        await database.close()
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
        assert await store.claim_event("Ev1") is False  # expiry times are rounded up to the hour
        clock.advance(hours=1)
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


async def test_questions_and_picks_are_stored_masked(database_url, clock):
    """Masked before they are written, not only when the report shows them."""
    store = await Store.open(database_url, clock=clock)
    try:
        question = "can <@U0SECRET01> post photos of me? ask kari.nordmann@example.com"
        await store.record_question(question, "en", ReplyKind.FALLBACK, None, 0.1)
        await store.record_suggestion_pick(question, "photos", "en")
    finally:
        await store.close()

    def stored_questions(conn: Connection) -> list[str]:
        return [
            *conn.execute(text("SELECT question FROM questions")).scalars(),
            *conn.execute(text("SELECT question FROM suggestion_picks")).scalars(),
        ]

    database = Database(database_url)
    try:
        stored = await database.run(stored_questions)
    finally:
        await database.close()
    assert len(stored) == 2
    for row in stored:
        assert "U0SECRET01" not in row and "kari.nordmann" not in row and "example.com" not in row
        assert row.startswith("can [someone] post photos of me? ask [email]")


async def test_a_vote_counts_for_the_local_day_it_was_given(database_url, clock):
    """00:30 in Oslo on 8 May is still 7 May in UTC; the report's `since` is an Oslo date."""
    store = await Store.open(database_url, clock=clock, tz=ZoneInfo("Europe/Oslo"))
    try:
        clock.at(2028, 5, 8, 0, 30)
        await store.record_feedback("photos", True)
        assert await store.feedback_counts(since=date(2028, 5, 8)) == {"photos": (1, 0)}
    finally:
        await store.close()


async def test_without_a_time_zone_votes_are_dated_in_utc(database_url, clock):
    store = await Store.open(database_url, clock=clock)
    try:
        clock.at(2028, 5, 8, 0, 30)
        await store.record_feedback("photos", True)
        assert await store.feedback_counts(since=date(2028, 5, 8)) == {}
        assert await store.feedback_counts(since=date(2028, 5, 7)) == {"photos": (1, 0)}
    finally:
        await store.close()


async def test_when_a_question_was_asked_is_kept_to_the_local_hour_only(database_url, clock):
    """Nothing else with a time (a claim, an escalation route) can be matched with a question by it."""
    store = await Store.open(database_url, clock=clock, tz=ZoneInfo("Asia/Kolkata"))  # UTC+5:30
    try:
        clock.at(2028, 5, 15, 20, 44)  # Oslo 20:44 = 18:44 UTC = 00:14 on the 16th in Kolkata
        clock.advance(seconds=17.25)
        await store.record_question("can I post photos?", "en", ReplyKind.ANSWER, "photos", 0.9)
        await store.record_suggestion_pick("can I film?", "photos", "en")
        [asked] = await store.question_log()
        [picked] = await store.pick_log()
    finally:
        await store.close()

    kolkata = asked.asked_at.astimezone(ZoneInfo("Asia/Kolkata"))
    assert (kolkata.date(), kolkata.hour, kolkata.minute, kolkata.second, kolkata.microsecond) == (
        date(2028, 5, 16),
        0,
        0,
        0,
        0,
    )
    assert picked.at == asked.asked_at


async def test_a_question_asked_in_the_first_hour_of_a_day_counts_for_that_day(database_url, clock):
    """Kept to the hour, it is stored at exactly midnight: a report from that day on still has it."""
    store = await Store.open(database_url, clock=clock)  # UTC
    try:
        clock.at(2028, 5, 16, 2, 30)  # Oslo 02:30 = 00:30 UTC
        await store.record_question("can I post photos?", "en", ReplyKind.ANSWER, "photos", 0.9)
        await store.record_suggestion_pick("can I film?", "photos", "en")
        midnight = datetime(2028, 5, 16, tzinfo=UTC)
        asked = await store.question_log(since=midnight)
        picked = await store.pick_log(since=midnight)
        later = await store.question_log(since=midnight + timedelta(hours=1))
    finally:
        await store.close()

    assert [question.asked_at for question in asked] == [midnight]
    assert [pick.at for pick in picked] == [midnight]
    assert later == []
