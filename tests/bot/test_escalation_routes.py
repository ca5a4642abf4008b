"""The store remembers how to reach the employee behind an "Ask HR" thread, for 30 days."""

from __future__ import annotations

from datetime import UTC, time, timedelta

from sqlalchemy import select

from bot.database import Database, escalation_routes
from bot.store import Store
from tests.bot.conftest import Clock

THREAD = "C0HRDESK:1700000002.000100"


async def test_a_route_is_found_by_platform_and_thread_until_it_expires(
    database_url: str, clock: Clock
) -> None:
    store = await Store.open(database_url, clock=clock)
    try:
        await store.save_escalation("slack", THREAD, {"user": "U0ASKER01"}, "nb")

        route = await store.escalation("slack", THREAD)
        assert route is not None and (route.route, route.lang) == ({"user": "U0ASKER01"}, "nb")
        assert await store.escalation("teams", THREAD) is None
        assert await store.escalation("slack", "C0HRDESK:1699999999.000100") is None

        clock.advance(days=29)
        assert await store.escalation("slack", THREAD) is not None
        clock.advance(days=2)
        assert await store.escalation("slack", THREAD) is None
    finally:
        await store.close()


async def test_expired_routes_are_purged_and_a_new_escalation_in_a_thread_replaces_the_old(
    database_url: str, clock: Clock
) -> None:
    store = await Store.open(database_url, clock=clock)
    try:
        await store.save_escalation("slack", THREAD, {"user": "U0FIRST01"}, "en")
        await store.save_escalation("slack", THREAD, {"user": "U0SECOND1"}, "nb")
        await store.save_escalation("teams", "19:hr@thread.tacv2;messageid=1", {"conversation": {}}, "en")
        route = await store.escalation("slack", THREAD)
        assert route is not None and route.route == {"user": "U0SECOND1"}

        clock.advance(days=31)
        await store.purge()
        clock.advance(days=-31)  # even looked up "back in time", the purged routes are gone
        assert await store.escalation("slack", THREAD) is None
        assert await store.escalation("teams", "19:hr@thread.tacv2;messageid=1") is None
    finally:
        await store.close()


async def test_nothing_in_a_route_dates_the_escalation_closer_than_its_day(
    database_url: str, clock: Clock
) -> None:
    """An HR thread's id is its post's time; kept as it is, it would tie who asked to when they asked."""
    store = await Store.open(database_url, clock=clock)
    try:
        clock.advance(hours=3, minutes=7, seconds=5.5)
        await store.save_escalation("slack", THREAD, {"user": "U0ASKER01"}, "en")
        assert await store.escalation("slack", THREAD) is not None
    finally:
        await store.close()

    database = Database(database_url)
    try:
        [(thread_id, expires_at)] = await database.run(
            lambda conn: conn.execute(
                select(escalation_routes.c.thread_id, escalation_routes.c.expires_at)
            ).all()
        )
    finally:
        await database.close()
    assert "1700000002" not in thread_id and thread_id.startswith("sha256:")
    assert expires_at.astimezone(UTC).timetz() == time(tzinfo=UTC)  # midnight: the day, no finer


async def test_a_route_saved_before_thread_ids_were_hashed_is_still_found(
    database_url: str, clock: Clock
) -> None:
    store = await Store.open(database_url, clock=clock)
    try:
        await store.database.run(
            lambda conn: conn.execute(
                escalation_routes.insert().values(
                    platform="slack", thread_id=THREAD, route={"user": "U0OLD0001"}, lang="nb",
                    expires_at=clock() + timedelta(days=30),
                )
            )
        )  # fmt: skip
        route = await store.escalation("slack", THREAD)
        assert route is not None and route.route == {"user": "U0OLD0001"}
    finally:
        await store.close()
