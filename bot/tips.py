"""The daily policy tip: when it is due, which tip each target gets, and posting it exactly once.

Exactly once across replicas comes from the database, never from timing:

Where tips go and when (targets, the schedule, the platforms' deliverers) is bot/tip_schedule.py.

1. Claim. A replica inserts `tip_posts(target, slot=day)`; the unique constraint lets exactly one insert
   win, whoever is first. The row is PENDING and records which tip the target gets.
2. Send. Any replica may move a due PENDING row to SENDING with a compare-and-set UPDATE; only the one
   whose UPDATE matched sends. The outcome is recorded as POSTED, FAILED, or PENDING again with a later
   `next_attempt_at` when the platform said "try later" (429, 5xx) — the message certainly did not arrive —
   or when this replica has not reloaded the knowledge base with that tip yet.
3. Crash. A replica that dies mid-send leaves its row SENDING. Nobody can know whether the platform got
   the message, so after `send_lease` the row becomes UNKNOWN and is never re-sent: we choose
   at-most-once for the one in-flight attempt over the risk of a double post. A replica that dies
   before sending (row still PENDING) loses nothing: another replica sends it.

A day missed while every replica was down is posted late if one comes back before the cut-off time;
after the cut-off (or on a later day) it is skipped. Rotation state is derived from `tip_posts`
itself (one source of truth): each target works through a "cycle" containing every tip, in an order
shuffled per target and cycle by a hash, so no tip repeats before all have been posted.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.conversation import Conversation
from bot.errors import ConfigError, DeliveryError
from bot.store import Store, TipPost, TipStatus, utcnow
from bot.tip_schedule import (
    Deliverer,
    PlannedTip,
    Schedule,
    Target,
    TipOutcome,
    holiday_calendar,
    local_zone,
    slack_targets,
)

log = logging.getLogger(__name__)

# How long the scheduler may sleep: short while tips are due (a Teams team that installs the bot
# mid-morning still gets today's tip), longer otherwise (only a safety net against clock jumps).
DUE_SLEEP = timedelta(minutes=10)
IDLE_SLEEP = timedelta(hours=6)
# The shortest sleep between runs, whatever the database says is due: never a busy loop.
MIN_SLEEP = timedelta(seconds=1)
PURGE_EVERY = timedelta(hours=1)


def _shuffle_key(target_key: str, cycle: int, tip_id: str) -> str:
    return hashlib.sha256(f"{target_key}\0{cycle}\0{tip_id}".encode()).hexdigest()


def next_tip(target_key: str, tip_ids: Sequence[str], history: Sequence[TipPost]) -> tuple[str, int] | None:
    """The tip a target gets next, and the rotation cycle it belongs to.

    A cycle ends once every tip currently in the knowledge base has been used in it; within a cycle the
    order is a per-target, per-cycle shuffle (a hash, so stable across replicas and restarts). Removed
    tips simply stop being candidates; a new tip is a candidate at once. FAILED posts do not count:
    the target never saw that tip.
    """
    if not tip_ids:
        return None
    used = [p for p in history if p.status is not TipStatus.FAILED]
    cycle = max((p.cycle for p in used), default=0)
    done = {p.tip_id for p in used if p.cycle == cycle}
    remaining = [t for t in tip_ids if t not in done]
    if not remaining:
        cycle += 1
        remaining = list(tip_ids)
        # Do not show the tip that ended the last cycle first in the next one.
        if len(remaining) > 1 and used and used[-1].tip_id in remaining:
            remaining.remove(used[-1].tip_id)
    remaining.sort(key=lambda t: _shuffle_key(target_key, cycle, t))
    return remaining[0], cycle


def _replica_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class TipScheduler:
    """Posts the daily tip to every target; any number of replicas may run one on the same store."""

    def __init__(
        self,
        store: Store,
        conversation: Conversation,
        deliverers: Sequence[Deliverer],
        schedule: Schedule,
        *,
        slack_channels: Sequence[Target] = (),
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Any] = asyncio.sleep,
        max_attempts: int = 4,
        retry_delay: timedelta = timedelta(minutes=2),
        send_lease: timedelta = timedelta(minutes=10),
        name: str | None = None,
    ) -> None:
        self.store = store
        self.conversation = conversation
        self.deliverers = {d.platform: d for d in deliverers}
        self.schedule = schedule
        self.slack_channels = tuple(slack_channels)
        self.clock = clock
        self.sleep = sleep
        self._stop: asyncio.Event | None = None  # set by run_forever; when set, no new send starts
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.send_lease = send_lease
        self.name = name or _replica_name()
        self._last_purge: datetime | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: Store,
        conversation: Conversation,
        deliverers: Sequence[Deliverer],
        **options: Any,
    ) -> TipScheduler:
        return cls(
            store,
            conversation,
            deliverers,
            Schedule.from_settings(settings),
            slack_channels=slack_targets(settings.tip_slack_channels, settings.default_lang),
            **options,
        )

    async def targets(self, *, deliverable_only: bool = True) -> list[Target]:
        """Every place a tip goes: the configured Slack channels and each Teams conversation the bot
        is installed in — by default only on the platforms this process can deliver to."""
        found = list(self.slack_channels)
        found += [
            Target("teams", r.conversation_id, r.lang, personal=r.personal)
            for r in await self.store.references("teams")
        ]
        return [t for t in found if t.platform in self.deliverers or not deliverable_only]

    # ------------------------------------------------------------------------------------- running

    async def run_once(self, now: datetime | None = None) -> list[TipOutcome]:
        """Do whatever is due at `now`: claim today's tips, send due ones, settle abandoned ones."""
        now = now or self.clock()
        today = self.schedule.local_day(now)
        for post_id in await self.store.expire_tips(stale_before=now - self.send_lease, today=today, now=now):
            log.warning("tip post %d was abandoned (sender stopped, or the day ended); not re-sent", post_id)
        if self._last_purge is None or now - self._last_purge >= PURGE_EVERY:
            await self.store.purge()
            self._last_purge = now
        day = self.schedule.due_day(now)
        if day is not None:
            for target in await self.targets():
                await self._claim(target, day, day.isoformat(), now)
        return await self._send_due(now)

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set (or until cancelled); a failing run (database down) is logged and
        retried at the next wake.

        Setting `stop` is the graceful way: the tip being delivered at that moment is finished and
        recorded, and the run's remaining tips are left PENDING for the next run, here or on another
        replica. Cancelling mid-delivery leaves that tip UNKNOWN instead, never re-sent.
        """
        self._stop = stop or asyncio.Event()
        log.info("tip scheduler %s started", self.name)
        while not self._stop.is_set():
            now = self.clock()
            least = MIN_SLEEP
            try:
                await self.run_once(now)
            except Exception:  # the server must keep answering questions if the tip run fails
                log.exception("tip run failed; trying again later")
                least = DUE_SLEEP  # a run that fails may fail again: not once a second
            if not self._stop.is_set():
                seconds = (await self._next_wake(now) - self.clock()).total_seconds()
                await self._sleep_unless_stopped(max(least.total_seconds(), seconds), self._stop)
        log.info("tip scheduler %s stopped", self.name)

    async def _sleep_unless_stopped(self, seconds: float, stop: asyncio.Event) -> None:
        nap = asyncio.ensure_future(self.sleep(seconds))
        woken = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({nap, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            nap.cancel()
            woken.cancel()
        if nap.done() and not nap.cancelled():
            nap.result()  # a failing sleep (tests stop the loop this way) propagates

    async def _next_wake(self, now: datetime) -> datetime:
        wake = now + (DUE_SLEEP if self.schedule.due_day(now) is not None else IDLE_SLEEP)
        candidates = [self.schedule.next_start(now)]
        try:
            # Only rows this replica can send: another platform's overdue row would wake it at once.
            candidates.append(await self.store.next_tip_attempt(platforms=sorted(self.deliverers)))
        except Exception:  # the database being down must not stop the loop; retried at the next wake
            log.exception("could not read the next tip attempt")
        return min([wake, *(c for c in candidates if c is not None)])

    async def post_now(self, only: Sequence[str] = (), now: datetime | None = None) -> list[TipOutcome]:
        """`policybot tips post --now`: post to the targets at once, recorded like scheduled posts.

        Today's scheduled slot is used when it is still free (so the scheduled run does not post a
        second tip today); otherwise the post is an extra, in a slot of its own. `only` restricts the
        targets to those whose id or `platform:id` is listed.
        """
        now = now or self.clock()
        day = self.schedule.local_day(now)
        targets = [t for t in await self.targets() if not only or t.id in only or t.key in only]
        missing = [o for o in only if not any(o in (t.id, t.key) for t in targets)]
        if missing:
            raise ConfigError(
                f"no tip target {', '.join(missing)}; see `policybot tips preview` for the list"
            )
        posts = []
        for target in targets:
            post = await self._claim(target, day, day.isoformat(), now)
            if post is None:
                post = await self._claim(target, day, f"extra:{now.isoformat()}:{uuid.uuid4().hex[:8]}", now)
            if post is not None:
                posts.append((post, target))
        sent = [await self._send(post, now, personal=target.personal) for post, target in posts]
        return [outcome for outcome in sent if outcome is not None]

    # ------------------------------------------------------------------------------------ internals

    async def _claim(self, target: Target, day: date, slot: str, now: datetime) -> TipPost | None:
        if await self.store.tip_slot(target.platform, target.id, slot) is not None:
            return None  # already claimed, by us earlier or by another replica
        tip_ids = [t.id for t in self.conversation.kb.tips]
        history = await self.store.tip_history(target.platform, target.id)
        choice = next_tip(target.key, tip_ids, history)
        if choice is None:
            log.warning("the knowledge base has no tips; nothing to post to %s", target.label)
            return None
        tip_id, cycle = choice
        return await self.store.claim_tip(
            platform=target.platform,
            target_id=target.id,
            lang=target.lang,
            day=day,
            slot=slot,
            tip_id=tip_id,
            cycle=cycle,
            by=self.name,
            now=now,
        )

    async def _send_due(self, now: datetime) -> list[TipOutcome]:
        outcomes = []
        due = [post for post in await self.store.due_tips(now) if post.platform in self.deliverers]
        known = {t.key: t.personal for t in await self.targets()} if due else {}
        for post in due:
            if self._stop is not None and self._stop.is_set():
                break  # stopping: the rest stay PENDING for the next run
            # A target no longer configured or installed may have been a personal chat: hashed then.
            personal = known.get(f"{post.platform}:{post.target_id}", True)
            outcome = await self._send(post, now, personal=personal)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    async def _send(self, post: TipPost, now: datetime, *, personal: bool) -> TipOutcome | None:
        """Send one claimed tip if we win the compare-and-set; a failure stays with its target.

        The send is stamped with the time it starts, not the run's `now`: in a long run (slow
        deliveries) a later send stamped at the run's start would already look abandoned to the other
        replicas (older than `send_lease`) and be marked UNKNOWN while in flight.
        """
        target = Target(post.platform, post.target_id, post.lang, personal=personal)
        deliverer = self.deliverers.get(post.platform)
        if deliverer is None:
            return None  # a replica configured for that platform will send it
        # Never before `now`: the row was found due at `now` (a caller may pass a `now` of its own).
        sending = await self.store.begin_send(post.id, by=self.name, now=max(now, self.clock()))
        if sending is None:
            return None  # another replica is on it, or it is done
        status, error, retry_at = await self._attempt(deliverer, target, sending)
        recorded = await self.store.finish_send(
            post.id, by=self.name, status=status, now=self.clock(), error=error, next_attempt_at=retry_at
        )
        if not recorded:
            # The send outlasted `send_lease` and another replica settled the row as abandoned: what
            # the store says is what stands (and what the next runs act on).
            log.warning(
                "could not record how tip post %d ended (%s): it was taken for abandoned after %s",
                post.id, status, self.send_lease,
            )  # fmt: skip
            settled = await self.store.tip_slot(post.platform, post.target_id, post.slot)
            if settled is not None:
                status, error = settled.status, settled.error
        return TipOutcome(target, post.day, post.tip_id, status, error)

    async def _attempt(
        self, deliverer: Deliverer, target: Target, post: TipPost
    ) -> tuple[TipStatus, str | None, datetime | None]:
        """One delivery attempt: (new status, error, when to retry). Cancellation and other
        BaseExceptions propagate and leave the row SENDING (see the module docstring)."""
        delay = self.retry_delay * 2 ** (post.attempts - 1)
        if post.tip_id not in {t.id for t in self.conversation.kb.tips}:
            # Most likely HR just added it and another replica, already reloaded, claimed it: leave it
            # to a replica that knows it. Removed for good, it fails once the attempts run out (or when
            # the day ends, in `Store.expire_tips`).
            if post.attempts < self.max_attempts:
                log.warning(
                    "tip %s is not in this replica's knowledge base; retrying in %s", post.tip_id, delay
                )
                error = f"tip {post.tip_id!r} is not in the knowledge base here (not reloaded yet?)"
                return TipStatus.PENDING, error, self.clock() + delay
            return (
                TipStatus.FAILED,
                f"tip {post.tip_id!r} was removed from the knowledge base before it was sent",
                None,
            )
        reply = self.conversation.tip(post.lang, post.tip_id)
        try:
            await deliverer.deliver(target, reply)
        except DeliveryError as exc:
            error = target.redact(str(exc))
            if exc.retryable and post.attempts < self.max_attempts:
                if exc.retry_after is not None:
                    delay = max(delay, timedelta(seconds=exc.retry_after))
                log.warning("tip to %s failed (%s); retrying in %s", target.label, error, delay)
                return TipStatus.PENDING, error, self.clock() + delay
            log.error("tip to %s failed after %d attempt(s): %s", target.label, post.attempts, error)
            return TipStatus.FAILED, error, None
        except Exception as exc:  # a bug in one deliverer must not stop the other targets
            log.exception("tip to %s failed unexpectedly; not retried", target.label)
            return TipStatus.FAILED, target.redact(f"{type(exc).__name__}: {exc}"), None
        log.info("posted tip %s to %s", post.tip_id, target.label)
        return TipStatus.POSTED, None, None

    # -------------------------------------------------------------------------------------- preview

    async def preview(self, days: int = 7, now: datetime | None = None) -> list[PlannedTip]:
        """What each target gets over the next `days` days: recorded posts as they are, then the
        rotation played forward. Claims nothing."""
        now = now or self.clock()
        today = self.schedule.local_day(now)
        kb = self.conversation.kb
        tips = {t.id: t for t in kb.tips}
        plan: list[PlannedTip] = []
        for target in await self.targets(deliverable_only=False):
            history = list(await self.store.tip_history(target.platform, target.id))
            by_slot = {p.slot: p for p in history}
            for day in self.schedule.tip_days(today, days):
                if day == today and day.isoformat() not in by_slot and now >= self.schedule.window(day)[1]:
                    continue  # past today's cut-off: today is skipped
                post = by_slot.get(day.isoformat())
                if post is not None:
                    status = post.status.value
                else:
                    choice = next_tip(target.key, list(tips), history)
                    if choice is None:
                        continue
                    post = _planned(target, day, *choice)
                    history.append(post)
                    status = "planned"
                tip = tips.get(post.tip_id)
                text = (
                    (tip.text.get(target.lang) or next(iter(tip.text.values()), "")) if tip else "(removed)"
                )
                plan.append(PlannedTip(day, target, post.tip_id, text, status))
        plan.sort(key=lambda p: (p.day, p.target.key))
        return plan


def _planned(target: Target, day: date, tip_id: str, cycle: int) -> TipPost:
    moment = datetime.combine(day, time(0), ZoneInfo("UTC"))
    return TipPost(
        id=0,
        platform=target.platform,
        target_id=target.id,
        lang=target.lang,
        day=day,
        slot=day.isoformat(),
        tip_id=tip_id,
        cycle=cycle,
        status=TipStatus.PENDING,
        attempts=0,
        claimed_by="preview",
        claimed_at=moment,
        updated_at=moment,
        next_attempt_at=None,
        error=None,
    )


__all__ = [  # what bot/tip_schedule.py holds is also reachable from here, where it is used
    "Deliverer",
    "PlannedTip",
    "Schedule",
    "Target",
    "TipOutcome",
    "TipScheduler",
    "TipStatus",
    "holiday_calendar",
    "local_zone",
    "next_tip",
    "slack_targets",
]
