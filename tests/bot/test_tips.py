"""The daily tip: schedule, rotation, and exactly one tip per target and day across replicas.

Replicas are separate `Store` connections to one database, each with its own `TipScheduler`; the clock
is the test's. Deliveries go to a recording Deliverer (our own protocol boundary); the Slack Web API
path is covered in tests/adapters/test_slack_tips.py.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from bot.config import Settings
from bot.conversation import Conversation, Reply, ReplyKind
from bot.errors import ConfigError, DeliveryError
from bot.knowledge import MESSAGE_KEYS, KnowledgeBase
from bot.knowledge_loader import load_knowledge
from bot.store import Store, TipStatus
from bot.tips import DUE_SLEEP, MIN_SLEEP, Schedule, Target, TipScheduler, next_tip

ENTRY = """\
entries:
  - id: photos
    title: {en: Photos at work, nb: Bilder på jobben}
    questions:
      en:
        - Can I post a photo from the office?
      nb:
        - Kan jeg legge ut bilde fra kontoret?
    answer:
      en: Check that no customer or screen is in it.
      nb: Sjekk at ingen kunder eller skjermer er med.
"""

SETTINGS = Settings(
    default_lang="en",
    tip_slack_channels=("C-general", "C-norsk:nb"),
    tip_days=("mon", "tue", "wed", "thu", "fri"),
    tip_time=time(9, 0),
    tip_cutoff=time(12, 0),
    timezone="Europe/Oslo",
    tip_holidays="NO",
)


async def knowledge(directory: Path, tip_ids: list[str]) -> KnowledgeBase:
    """A one-entry knowledge base with the given tips, written as HR would write it."""
    write_knowledge(directory, tip_ids)
    return await load_knowledge(directory)


def write_knowledge(directory: Path, tip_ids: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tips = "tips:\n" + "".join(
        f"  - id: {t}\n    entry: photos\n    en: Tip {t}.\n    nb: Tips {t}.\n" for t in tip_ids
    )
    (directory / "entries.yaml").write_text(ENTRY + tips, encoding="utf-8")
    messages = ["messages:"]
    for key, placeholders in MESSAGE_KEYS.items():
        fields = " ".join("{" + p + "}" for p in placeholders)
        messages += [f"  {key}:", f'    en: "EN {key} {fields}"', f'    nb: "NB {key} {fields}"']
    (directory / "messages.yaml").write_text("\n".join(messages) + "\n", encoding="utf-8")


class Crash(BaseException):
    """The process dies (as far as this coroutine can tell): nothing after it runs."""


@dataclass
class Recorder:
    """A Deliverer at our own protocol boundary that records what reached each target."""

    platform: str
    sent: list[tuple[Target, Reply]]
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    crash_after_send: bool = False

    async def deliver(self, target: Target, reply: Reply) -> None:
        planned = self.failures.get(target.id)
        if planned:
            raise planned.pop(0)
        await asyncio.sleep(0)  # let the other replicas run in between, as a real HTTP call would
        self.sent.append((target, reply))
        if self.crash_after_send:
            raise Crash


@dataclass
class World:
    """One database, a knowledge base, a clock, and everything any replica delivered."""

    url: str
    clock: Callable[..., object]
    conversation: Conversation
    sent: list[tuple[Target, Reply]] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)

    async def replica(
        self,
        settings: Settings = SETTINGS,
        *,
        platforms: tuple[str, ...] = ("slack", "teams"),
        store_type: type[Store] = Store,
        **options: object,
    ) -> TipScheduler:
        store = await store_type.open(self.url, clock=self.clock)  # type: ignore[arg-type]
        self.stores.append(store)
        deliverers = [Recorder(p, self.sent) for p in platforms]
        return TipScheduler.from_settings(
            settings, store, self.conversation, deliverers, clock=self.clock, **options
        )

    def tips_for(self, target_id: str) -> list[str]:
        return [reply.entry_id or "" for target, reply in self.sent if target.id == target_id]

    def per_target(self) -> Counter[str]:
        return Counter(target.key for target, _ in self.sent)


@pytest.fixture
async def world(database_url: str, clock, tmp_path: Path) -> AsyncIterator[World]:
    kb = await knowledge(tmp_path / "kb", ["backgrounds", "badges", "screens", "customers", "decline"])
    world = World(database_url, clock, Conversation(kb))
    store = await Store.open(database_url, clock=clock)
    reference = {"conversation": {"id": "19:hr", "conversationType": "channel"}}
    await store.save_reference("teams", "19:hr", reference, "nb")
    await store.close()
    yield world
    for store in world.stores:
        await store.close()


ALL_TARGETS = {"slack:C-general", "slack:C-norsk", "teams:19:hr"}


async def test_three_replicas_started_at_once_post_one_tip_per_target_per_day(world, clock):
    replicas = [await world.replica() for _ in range(3)]
    for day in (15, 16):  # Monday and Tuesday
        clock.at(2028, 5, day, 9, 0)
        await asyncio.gather(*(r.run_once() for r in replicas))
        await asyncio.gather(*(r.run_once() for r in replicas))  # and again, a minute later
        clock.advance(minutes=1)
        await asyncio.gather(*(r.run_once() for r in replicas))

    assert world.per_target() == dict.fromkeys(ALL_TARGETS, 2)
    posts = await world.stores[0].tip_posts()
    assert len(posts) == 6
    assert {p.status for p in posts} == {TipStatus.POSTED}
    # Each target has its language: the Norwegian channel and the Teams team got the nb text.
    langs = {target.key: reply.lang for target, reply in world.sent}
    assert langs == {"slack:C-general": "en", "slack:C-norsk": "nb", "teams:19:hr": "nb"}
    tip = next(reply for target, reply in world.sent if target.id == "C-norsk")
    assert tip.kind is ReplyKind.TIP
    assert tip.text.startswith("Tips ")
    assert tip.title == "NB tip"


async def test_nothing_is_posted_before_the_tip_time(world, clock):
    replica = await world.replica()
    clock.at(2028, 5, 15, 8, 59)
    assert await replica.run_once() == []
    assert world.sent == []


async def test_a_replica_restarting_after_the_tip_time_does_not_post_again(world, clock):
    clock.at(2028, 5, 15, 9, 0)
    await (await world.replica()).run_once()
    assert world.per_target() == dict.fromkeys(ALL_TARGETS, 1)

    clock.at(2028, 5, 15, 9, 30)
    restarted = await world.replica()
    assert await restarted.run_once() == []
    assert world.per_target() == dict.fromkeys(ALL_TARGETS, 1)


async def test_a_replica_crashing_mid_send_does_not_post_twice(world, clock):
    clock.at(2028, 5, 15, 9, 0)
    doomed = await world.replica(platforms=("slack",))
    doomed.deliverers["slack"].crash_after_send = True  # type: ignore[attr-defined]
    with pytest.raises(Crash):
        await doomed.run_once()
    assert len(world.sent) == 1  # the message went out, but the crash came before it was recorded

    survivor = await world.replica(platforms=("slack",))
    clock.at(2028, 5, 15, 9, 5)
    await survivor.run_once()  # the unknown send is left alone; the other channel gets its tip
    clock.at(2028, 5, 15, 9, 30)  # long after the send lease: still not re-sent
    await survivor.run_once()

    assert world.per_target() == {"slack:C-general": 1, "slack:C-norsk": 1}
    statuses = sorted(p.status.value for p in await survivor.store.tip_posts())
    assert statuses == ["posted", "unknown"]


async def test_a_tip_claimed_by_a_replica_that_died_before_sending_is_sent_by_another(world, clock):
    clock.at(2028, 5, 15, 9, 0)
    replica = await world.replica(platforms=("slack",))
    claimed = await replica.store.claim_tip(
        platform="slack",
        target_id="C-general",
        lang="en",
        day=date(2028, 5, 15),
        slot="2028-05-15",
        tip_id="badges",
        cycle=0,
        by="replica-that-died",
        now=clock(),
    )
    assert claimed is not None

    clock.at(2028, 5, 15, 9, 2)
    await replica.run_once()
    assert world.tips_for("C-general") == ["badges"]
    assert world.per_target() == {"slack:C-general": 1, "slack:C-norsk": 1}


async def test_cancelling_the_scheduler_mid_send_does_not_post_twice(world, clock):
    """A deploy stopping the server while a tip is in flight: the send is never repeated."""
    clock.at(2028, 5, 15, 9, 0)
    replica = await world.replica(platforms=("slack",))
    started = asyncio.Event()

    class Hanging(Recorder):
        async def deliver(self, target: Target, reply: Reply) -> None:
            started.set()
            await asyncio.sleep(3600)

    replica.deliverers["slack"] = Hanging("slack", world.sent)
    task = asyncio.create_task(replica.run_once())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    clock.at(2028, 5, 15, 10, 0)
    await (await world.replica(platforms=("slack",))).run_once()
    assert world.per_target() == {"slack:C-norsk": 1}  # C-general's fate is unknown: not re-sent


async def test_a_day_missed_while_down_is_posted_before_the_cutoff_and_skipped_after(world, clock):
    replica = await world.replica()
    clock.at(2028, 5, 15, 11, 59)  # Monday: every replica was down at 09:00, one is back before noon
    await replica.run_once()
    assert world.per_target() == dict.fromkeys(ALL_TARGETS, 1)

    clock.at(2028, 5, 16, 12, 0)  # Tuesday: back only at the cut-off
    assert await replica.run_once() == []
    clock.at(2028, 5, 18, 8, 0)  # Thursday morning: Tuesday is not posted late either
    assert await replica.run_once() == []
    assert world.per_target() == dict.fromkeys(ALL_TARGETS, 1)
    assert {p.day for p in await replica.store.tip_posts()} == {date(2028, 5, 15)}


async def test_weekends_and_public_holidays_are_skipped(world, clock):
    replica = await world.replica()
    for day in (13, 14, 17):  # Saturday, Sunday, and Wednesday 17 May (Norway's Constitution Day)
        clock.at(2028, 5, day, 9, 30)
        assert await replica.run_once() == []
    assert world.sent == []

    no_holidays = await world.replica(replace(SETTINGS, tip_holidays=None))
    clock.at(2028, 5, 17, 9, 30)
    await no_holidays.run_once()
    assert world.per_target() == dict.fromkeys(ALL_TARGETS, 1)


def test_the_schedule_follows_local_time_through_daylight_saving(clock):
    schedule = Schedule.from_settings(SETTINGS)
    winter = schedule.window(date(2028, 1, 10))[0]
    summer = schedule.window(date(2028, 6, 12))[0]
    assert (winter.utcoffset(), summer.utcoffset()) == (timedelta(hours=1), timedelta(hours=2))
    friday_noon = clock.oslo(2028, 5, 12, 12, 0)
    assert schedule.next_start(friday_noon) == clock.oslo(2028, 5, 15, 9, 0)  # skips the weekend
    assert schedule.next_start(clock.oslo(2028, 5, 16, 9, 0)) == clock.oslo(2028, 5, 18, 9, 0)  # and 17 May


def test_bad_schedule_settings_are_reported_clearly():
    with pytest.raises(ConfigError, match="POLICYBOT_TIMEZONE"):
        Schedule.from_settings(replace(SETTINGS, timezone="Mars/Olympus"))
    with pytest.raises(ConfigError, match="POLICYBOT_TIP_CUTOFF"):
        Schedule.from_settings(replace(SETTINGS, tip_time=time(12, 0), tip_cutoff=time(9, 0)))
    with pytest.raises(ConfigError, match="POLICYBOT_TIP_HOLIDAYS"):
        Schedule.from_settings(replace(SETTINGS, tip_holidays="XX"))
    with pytest.raises(ConfigError, match="POLICYBOT_TIP_SLACK_CHANNELS"):
        TipScheduler.from_settings(replace(SETTINGS, tip_slack_channels=("C1:xx",)), None, None, [])  # type: ignore[arg-type]


async def test_each_target_sees_every_tip_before_any_repeats_in_its_own_order(world, clock):
    replica = await world.replica(
        replace(SETTINGS, tip_days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"), tip_holidays=None)
    )
    for day in range(15):
        clock.now = clock.oslo(2028, 6, 1, 9, 0) + timedelta(days=day)
        await replica.run_once()

    orders = {}
    for target in ("C-general", "C-norsk", "19:hr"):
        tips = world.tips_for(target)
        assert len(tips) == 15
        cycles = [tips[0:5], tips[5:10], tips[10:15]]
        for cycle in cycles:
            assert sorted(cycle) == ["backgrounds", "badges", "customers", "decline", "screens"]
        assert tips[4] != tips[5] and tips[9] != tips[10]  # a cycle never starts with the last one's end
        orders[target] = tuple(cycles[0])
    assert len(set(orders.values())) == 3, "each target has its own shuffled order"


async def test_a_removed_tip_is_skipped_and_a_new_tip_joins_the_cycle(world, clock, tmp_path):
    replica = await world.replica(replace(SETTINGS, tip_slack_channels=("C-general",)), platforms=("slack",))
    clock.at(2028, 6, 6, 9, 0)
    await replica.run_once()
    clock.at(2028, 6, 7, 9, 0)
    await replica.run_once()
    seen = world.tips_for("C-general")
    unseen = [t for t in ["backgrounds", "badges", "customers", "decline", "screens"] if t not in seen]

    removed = unseen[0]
    kept = [t for t in ["backgrounds", "badges", "customers", "decline", "screens"] if t != removed]
    world.conversation.reload(await knowledge(tmp_path / "kb2", [*kept, "new-tip"]))
    for day in (8, 9, 12):
        clock.at(2028, 6, day, 9, 0)
        await replica.run_once()

    tips = world.tips_for("C-general")
    assert removed not in tips
    assert sorted(tips) == sorted([*kept, "new-tip"])  # the cycle: every current tip exactly once


def test_rotation_is_deterministic_for_a_target_and_differs_between_targets():
    tips = [f"t{n}" for n in range(8)]
    assert next_tip("slack:C1", tips, []) == next_tip("slack:C1", tips, [])
    firsts = {next_tip(f"slack:C{n}", tips, [])[0] for n in range(20)}  # type: ignore[index]
    assert len(firsts) > 1
    assert next_tip("slack:C1", [], []) is None


async def test_a_failing_target_does_not_stop_the_others_and_is_retried_then_recorded_failed(world, clock):
    replica = await world.replica(max_attempts=3, retry_delay=timedelta(minutes=2))
    slack = replica.deliverers["slack"]
    slack.failures["C-general"] = [  # type: ignore[attr-defined]
        DeliveryError("ratelimited", retryable=True, retry_after=30) for _ in range(5)
    ]
    slack.failures["C-norsk"] = [DeliveryError("is_archived")]  # type: ignore[attr-defined]

    clock.at(2028, 5, 15, 9, 0)
    outcomes = await replica.run_once()
    assert {(o.target.key, o.status) for o in outcomes} == {
        ("slack:C-general", TipStatus.PENDING),
        ("slack:C-norsk", TipStatus.FAILED),
        ("teams:19:hr", TipStatus.POSTED),
    }
    assert await replica.store.next_tip_attempt() == clock.oslo(2028, 5, 15, 9, 2)

    clock.at(2028, 5, 15, 9, 1)
    assert await replica.run_once() == []  # not due yet
    clock.at(2028, 5, 15, 9, 2)
    assert [o.status for o in await replica.run_once()] == [TipStatus.PENDING]  # 2nd attempt; next in 4 min
    clock.at(2028, 5, 15, 9, 6)
    assert [o.status for o in await replica.run_once()] == [TipStatus.FAILED]  # 3rd attempt was the last

    posts = {p.target_id: p for p in await replica.store.tip_posts()}
    assert (posts["C-general"].status, posts["C-general"].attempts) == (TipStatus.FAILED, 3)
    assert posts["C-general"].error == "ratelimited"
    assert (posts["C-norsk"].status, posts["C-norsk"].attempts) == (TipStatus.FAILED, 1)
    assert world.per_target() == {"teams:19:hr": 1}


async def test_a_retry_that_succeeds_posts_once(world, clock):
    replica = await world.replica(platforms=("slack",))
    replica.deliverers["slack"].failures["C-general"] = [DeliveryError("503", retryable=True)]  # type: ignore[attr-defined]
    clock.at(2028, 5, 15, 9, 0)
    await replica.run_once()
    clock.at(2028, 5, 15, 9, 2)
    await replica.run_once()
    clock.at(2028, 5, 15, 9, 30)
    await replica.run_once()
    assert world.per_target() == {"slack:C-general": 1, "slack:C-norsk": 1}


async def test_a_retry_still_pending_when_the_day_ends_is_recorded_failed(world, clock):
    replica = await world.replica(platforms=("slack",), retry_delay=timedelta(hours=20))
    replica.deliverers["slack"].failures["C-general"] = [DeliveryError("503", retryable=True)]  # type: ignore[attr-defined]
    clock.at(2028, 5, 15, 9, 0)
    await replica.run_once()
    clock.at(2028, 5, 16, 9, 0)
    await replica.run_once()
    posts = [p for p in await replica.store.tip_posts() if p.target_id == "C-general"]
    assert [(p.day.day, p.status) for p in posts] == [(15, TipStatus.FAILED), (16, TipStatus.POSTED)]


async def test_the_scheduler_runs_forever_sleeping_until_the_next_tip(world, clock):
    clock.at(2028, 5, 12, 8, 50)  # Friday
    naps: list[float] = []

    class Stop(Exception):
        pass

    async def sleep(seconds: float) -> None:
        naps.append(seconds)
        clock.advance(seconds=seconds)
        if clock() >= clock.oslo(2028, 5, 15, 9, 5):
            raise Stop

    replica = await world.replica(sleep=sleep)
    with pytest.raises(Stop):
        await replica.run_forever()
    assert {p.day for p in await replica.store.tip_posts()} == {date(2028, 5, 12), date(2028, 5, 15)}
    assert world.per_target() == dict.fromkeys(ALL_TARGETS, 2)
    assert naps[0] == 600  # 08:50 -> the tip time
    assert max(naps[1:18]) == 600  # every ten minutes until the cut-off: new Teams installs get a tip
    assert len(naps) < 40  # and otherwise it sleeps through the weekend


async def test_preview_shows_what_each_target_will_get_and_the_days_then_match_it(world, clock):
    replica = await world.replica()
    clock.at(2028, 5, 15, 10, 0)
    await replica.run_once()  # Monday's tips are out
    plan = await replica.preview(days=7)

    assert sorted({p.day for p in plan}) == [date(2028, 5, d) for d in (15, 16, 18, 19)]  # no 17 May
    assert {p.target.key for p in plan} == ALL_TARGETS
    monday = [p for p in plan if p.day == date(2028, 5, 15)]
    assert {p.status for p in monday} == {"posted"}
    assert {p.status for p in plan if p.day > date(2028, 5, 15)} == {"planned"}
    norsk = next(p for p in plan if p.target.id == "C-norsk")
    assert norsk.text.startswith("Tips ")
    assert len(await replica.store.tip_posts()) == 3, "preview claims nothing"

    for day in (16, 17, 18, 19):
        clock.at(2028, 5, day, 9, 0)
        await replica.run_once()
    for target in ("C-general", "C-norsk", "19:hr"):
        assert world.tips_for(target) == [p.tip_id for p in plan if p.target.id == target]


async def test_posting_now_uses_todays_slot_and_later_posts_are_extras(world, clock):
    replica = await world.replica()
    clock.at(2028, 5, 15, 8, 0)
    outcomes = await replica.post_now(["C-general"])
    assert [(o.target.key, o.status) for o in outcomes] == [("slack:C-general", TipStatus.POSTED)]

    clock.at(2028, 5, 15, 9, 0)
    await replica.run_once()  # today's scheduled tip already went to C-general
    assert world.per_target() == dict.fromkeys(ALL_TARGETS, 1)

    clock.at(2028, 5, 15, 9, 30)
    await replica.post_now(["slack:C-general", "teams:19:hr"])  # an extra, on purpose
    assert world.per_target() == {"slack:C-general": 2, "slack:C-norsk": 1, "teams:19:hr": 2}
    tips = world.tips_for("C-general")
    assert tips[0] != tips[1], "an extra tip still follows the rotation"

    with pytest.raises(ConfigError, match="C-nowhere"):
        await replica.post_now(["C-nowhere"])


async def test_stopping_the_scheduler_finishes_the_tip_in_flight_and_leaves_the_rest_for_later(world, clock):
    """A deploy stopping the server while tips go out: the tip on its way is delivered and recorded, the
    next ones are not started, and the next run posts them, so no tip is left in doubt."""
    clock.at(2028, 5, 15, 9, 0)
    replica = await world.replica(platforms=("slack",))
    stop = asyncio.Event()

    class StoppedMidway(Recorder):
        async def deliver(self, target: Target, reply: Reply) -> None:
            stop.set()  # SIGTERM arrives while this tip is on its way
            await asyncio.sleep(0.05)
            await super().deliver(target, reply)

    replica.deliverers["slack"] = StoppedMidway("slack", world.sent)
    await asyncio.wait_for(replica.run_forever(stop), 5)

    statuses = sorted(p.status for p in await replica.store.tip_posts() if p.platform == "slack")
    assert statuses == [TipStatus.PENDING, TipStatus.POSTED]
    assert len(world.sent) == 1

    clock.at(2028, 5, 15, 9, 10)
    await (await world.replica(platforms=("slack",))).run_once()
    assert world.per_target() == {"slack:C-general": 1, "slack:C-norsk": 1}


# -------------------------------------------------------------- fixes found in review (one test each)


class StopLoop(Exception):
    """Raised by a test's sleep to end run_forever."""


async def naps(replica: TipScheduler, clock, *, count: int, advance: bool = False) -> list[float]:
    """Run `replica.run_forever` until it has slept `count` times; how long it slept each time (the
    clock moves on by each nap when `advance`)."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if advance:
            clock.advance(seconds=seconds)
        if len(slept) == count:
            raise StopLoop

    replica.sleep = sleep
    with pytest.raises(StopLoop):
        await replica.run_forever()
    return slept


class OverdueStore(Store):
    """A store that reports a tip due five minutes ago, whenever asked."""

    async def next_tip_attempt(self, *, platforms: object = None) -> datetime:
        return self._clock() - timedelta(minutes=5)


class RunFailsStore(OverdueStore):
    """The database answers, but a tip run fails (a permission error, say) while a tip is overdue."""

    async def expire_tips(self, **_: object) -> list[int]:
        raise RuntimeError("permission denied for table tip_posts")


async def test_a_replica_sleeps_instead_of_spinning_on_another_platforms_overdue_tip(world, clock):
    """A Slack-only replica shares the database with a Teams replica that claimed a tip but is down:
    the Teams row stays due, and this replica cannot send it, so it must not wake up for it."""
    clock.at(2028, 5, 15, 9, 0)
    slack_only = await world.replica(platforms=("slack",))
    await slack_only.store.claim_tip(
        platform="teams",
        target_id="19:hr",
        lang="nb",
        day=date(2028, 5, 15),
        slot="2028-05-15",
        tip_id="badges",
        cycle=0,
        by="teams-replica-that-is-down",
        now=clock(),
    )
    assert await naps(slack_only, clock, count=3, advance=True) == [
        600,
        600,
        600,
    ]  # every ten minutes while tips are due, as with nothing pending
    assert await slack_only.store.next_tip_attempt(platforms=["slack"]) is None
    assert await slack_only.store.next_tip_attempt(platforms=[]) is None  # a replica with no platform
    assert await slack_only.store.next_tip_attempt(platforms=["teams"]) == clock.oslo(2028, 5, 15, 9, 0)


async def test_the_scheduler_never_sleeps_less_than_the_minimum(world, clock):
    """Whatever the store says (a clock step back, a row this replica cannot take), no busy loop."""
    clock.at(2028, 5, 15, 9, 0)
    replica = await world.replica(store_type=OverdueStore)
    await replica.run_once()

    assert await naps(replica, clock, count=1) == [MIN_SLEEP.total_seconds()]


async def test_a_run_that_keeps_failing_is_retried_every_ten_minutes_not_every_second(world, clock):
    """The database answers, but the run fails (a permission error, say) while a tip is overdue."""
    clock.at(2028, 5, 15, 9, 0)
    replica = await world.replica(store_type=RunFailsStore)

    assert await naps(replica, clock, count=1) == [DUE_SLEEP.total_seconds()]


async def test_a_slow_run_stamps_each_send_when_it_starts_so_another_replica_leaves_it_alone(world, clock):
    """Each delivery takes 6 minutes (lease: 10). The second send starts at 09:06; another replica's
    check at 09:12 must not take it for abandoned, as it would if it were stamped 09:00."""
    clock.at(2028, 5, 15, 9, 0)
    slow = await world.replica(platforms=("slack",))
    other = await world.replica(platforms=())

    class Slow(Recorder):
        async def deliver(self, target: Target, reply: Reply) -> None:
            clock.advance(minutes=6)
            await other.run_once()  # another replica's loop runs meanwhile
            await super().deliver(target, reply)

    slow.deliverers["slack"] = Slow("slack", world.sent)
    outcomes = await slow.run_once()

    posts = await slow.store.tip_posts()
    assert [p.status for p in posts] == [TipStatus.POSTED, TipStatus.POSTED]
    assert [o.status for o in outcomes] == [TipStatus.POSTED, TipStatus.POSTED]
    assert posts[1].updated_at == clock.oslo(2028, 5, 15, 9, 12)


async def test_a_send_taken_over_meanwhile_reports_what_the_store_recorded(world, clock, caplog):
    """A delivery longer than the lease: another replica marks it UNKNOWN, and the outcome says so
    (not POSTED), with a warning that names no target."""
    clock.at(2028, 5, 15, 9, 0)
    slow = await world.replica(replace(SETTINGS, tip_slack_channels=("C-general",)), platforms=("slack",))
    other = await world.replica(platforms=())

    class TooSlow(Recorder):
        async def deliver(self, target: Target, reply: Reply) -> None:
            clock.advance(minutes=11)
            await other.run_once()
            await super().deliver(target, reply)

    slow.deliverers["slack"] = TooSlow("slack", world.sent)
    with caplog.at_level("WARNING", logger="bot.tips"):
        [outcome] = await slow.run_once()

    [post] = await slow.store.tip_posts()
    assert (post.status, outcome.status) == (TipStatus.UNKNOWN, TipStatus.UNKNOWN)
    assert outcome.error == post.error
    assert "could not record" in caplog.text and "C-general" not in caplog.text


PERSONAL_CHAT = "a:1Hq0personalChatWithKariNordmann"


async def test_a_personal_teams_chat_is_never_named_in_logs_or_outcomes(world, clock, caplog):
    replica = await world.replica()
    store = replica.store
    reference = {"conversation": {"id": PERSONAL_CHAT, "conversationType": "personal"}}
    await store.save_reference("teams", PERSONAL_CHAT, reference, "en")
    replica.deliverers["teams"].failures[PERSONAL_CHAT] = [  # type: ignore[attr-defined]
        DeliveryError(f"Teams refused (HTTP 502) for {PERSONAL_CHAT}", retryable=True)
    ]
    clock.at(2028, 5, 15, 9, 0)
    with caplog.at_level("DEBUG", logger="bot.tips"):
        outcomes = await replica.run_once()
        clock.at(2028, 5, 15, 9, 2)
        outcomes += await replica.run_once()

    personal = [o for o in outcomes if o.target.id == PERSONAL_CHAT]
    assert [o.status for o in personal] == [TipStatus.PENDING, TipStatus.POSTED]
    label = "teams:personal#" + hashlib.sha256(PERSONAL_CHAT.encode()).hexdigest()[:8]
    assert personal[0].target.label == label
    assert PERSONAL_CHAT not in (personal[0].error or "") and label in (personal[0].error or "")
    assert label in caplog.text and PERSONAL_CHAT not in caplog.text
    channel = next(o for o in outcomes if o.target.id == "19:hr")
    assert channel.target.label == "teams:19:hr"  # a team channel is named as before
    assert "teams:19:hr" in caplog.text


def test_a_personal_chat_id_is_redacted_also_where_an_error_quotes_it_url_encoded() -> None:
    target = Target("teams", PERSONAL_CHAT, "en", personal=True)
    error = (
        f"POST https://smba.example/amer/v3/conversations/{quote(PERSONAL_CHAT, safe='')}/activities"
        f" failed (HTTP 403); retried as /v3/conversations/{quote(PERSONAL_CHAT)}/activities"
        f" for {PERSONAL_CHAT}"
    )
    redacted = target.redact(error)
    assert "1Hq0personalChat" not in redacted
    assert redacted.count(target.label) == 3
    channel = Target("teams", "19:hr@thread.tacv2", "en")
    assert (
        channel.redact(f"HTTP 403 for {quote(channel.id, safe='')}")
        == f"HTTP 403 for {quote(channel.id, safe='')}"
    )


async def test_a_replica_that_has_not_reloaded_yet_leaves_a_new_tip_to_one_that_has(world, clock, tmp_path):
    """HR adds a tip; replica A has reloaded and claims it, replica B (old knowledge) reaches the send
    first. B must put it back for later, and A (or B once reloaded) posts it the same day."""
    clock.at(2028, 5, 15, 9, 0)
    channel = replace(SETTINGS, tip_slack_channels=("C-general",))
    old = await world.replica(channel, platforms=("slack",))
    reloaded = Conversation(await knowledge(tmp_path / "kb-new", ["new-tip"]))
    new = await world.replica(channel, platforms=("slack",))
    new.conversation = reloaded
    await new.store.claim_tip(
        platform="slack",
        target_id="C-general",
        lang="en",
        day=date(2028, 5, 15),
        slot="2028-05-15",
        tip_id="new-tip",
        cycle=0,
        by=new.name,
        now=clock(),
    )

    [outcome] = await old.run_once()
    assert outcome.status is TipStatus.PENDING
    assert world.sent == []

    clock.at(2028, 5, 15, 9, 2)
    await new.run_once()
    assert world.tips_for("C-general") == ["new-tip"]
    [post] = await new.store.tip_posts()
    assert post.status is TipStatus.POSTED


async def test_a_tip_no_replica_knows_is_recorded_failed_after_the_bounded_retries(world, clock):
    clock.at(2028, 5, 15, 9, 0)
    replica = await world.replica(
        replace(SETTINGS, tip_slack_channels=("C-general",)), platforms=("slack",), max_attempts=3
    )
    await replica.store.claim_tip(
        platform="slack",
        target_id="C-general",
        lang="en",
        day=date(2028, 5, 15),
        slot="2028-05-15",
        tip_id="removed-tip",
        cycle=0,
        by="someone",
        now=clock(),
    )
    statuses = []
    for minute in (0, 2, 6):  # the retry delay doubles: 2, then 4 minutes
        clock.at(2028, 5, 15, 9, minute)
        statuses += [o.status for o in await replica.run_once()]
    assert statuses == [TipStatus.PENDING, TipStatus.PENDING, TipStatus.FAILED]
    [post] = await replica.store.tip_posts()
    assert post.status is TipStatus.FAILED and "removed-tip" in (post.error or "")
    assert world.sent == []
