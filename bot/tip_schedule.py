"""Where the daily tip goes and when: targets, the schedule, and the platforms' tip deliverers.

bot/tips.py posts the tips (exactly once across replicas); this module describes what it works from:
a `Target` per channel or chat, the weekly `Schedule` (local time, cut-off, public holidays) and the
`Deliverer` each platform provides (adapters/slack_web.py, adapters/teams_delivery.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from bot.config import WEEKDAYS, Settings
from bot.conversation import Reply
from bot.errors import ConfigError
from bot.languages import normalise
from bot.store import TipStatus


@dataclass(frozen=True)
class Target:
    """Where a tip goes: ("slack", channel id) or ("teams", conversation id), and in which language.

    `personal` marks a one-to-one chat: its id points at one person, so logs, errors and admin replies
    name it by `label` (a hash) instead.
    """

    platform: str
    id: str
    lang: str
    personal: bool = False

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.id}"

    @property
    def label(self) -> str:
        """How logs and admin replies name the target: the key, or a hash of a personal chat's id."""
        if not self.personal:
            return self.key
        return f"{self.platform}:personal#{hashlib.sha256(self.id.encode()).hexdigest()[:8]}"

    def redact(self, text: str) -> str:
        """`text` (e.g. a platform's error message) with a personal chat's id replaced by the label.

        The id is replaced as written and URL-encoded too: an HTTP error names the request's URL, where
        Teams' `a:1Hq0...` is `a%3A1Hq0...`.
        """
        if not self.personal:
            return text
        for form in dict.fromkeys((self.id, quote(self.id, safe=""), quote(self.id))):
            text = text.replace(form, self.label)
        return text


class Deliverer(Protocol):
    """Posts a reply to a target on one platform (adapters/slack_web.py, adapters/teams_delivery.py).

    Raises DeliveryError when the message was NOT delivered, with `retryable=True` when trying again
    later may succeed. Any other exception is treated as a permanent failure of that send.
    """

    platform: str

    async def deliver(self, target: Target, reply: Reply) -> None: ...


@dataclass(frozen=True)
class TipOutcome:
    """What happened to one target's tip in this run (for logs, the CLI and tests)."""

    target: Target
    day: date
    tip_id: str
    status: TipStatus
    error: str | None = None


@dataclass(frozen=True)
class PlannedTip:
    """One line of `policybot tips preview`: a target's tip on a day, already posted or planned."""

    day: date
    target: Target
    tip_id: str
    text: str
    status: str  # a TipStatus value for recorded days, "planned" for the future


@dataclass(frozen=True)
class Schedule:
    """When tips are due: weekdays at a local time, until a cut-off, minus public holidays."""

    weekdays: frozenset[int]
    at: time
    cutoff: time
    zone: ZoneInfo
    holiday_calendar: Any = None  # a `holidays` calendar, or None to post on holidays too

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        zone = local_zone(settings)
        if settings.tip_cutoff <= settings.tip_time:
            raise ConfigError(
                f"POLICYBOT_TIP_CUTOFF ({settings.tip_cutoff:%H:%M}) must be later than "
                f"POLICYBOT_TIP_TIME ({settings.tip_time:%H:%M})"
            )
        return cls(
            weekdays=frozenset(WEEKDAYS.index(d) for d in settings.tip_days),
            at=settings.tip_time,
            cutoff=settings.tip_cutoff,
            zone=zone,
            holiday_calendar=holiday_calendar(settings.tip_holidays),
        )

    def is_tip_day(self, day: date) -> bool:
        if day.weekday() not in self.weekdays:
            return False
        return self.holiday_calendar is None or day not in self.holiday_calendar

    def window(self, day: date) -> tuple[datetime, datetime]:
        """When `day`'s tip may go out: from the tip time up to (not including) the cut-off."""
        return (datetime.combine(day, self.at, self.zone), datetime.combine(day, self.cutoff, self.zone))

    def local_day(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def due_day(self, now: datetime) -> date | None:
        """The day whose tip is due at `now`, if any."""
        day = self.local_day(now)
        start, cutoff = self.window(day)
        return day if self.is_tip_day(day) and start <= now < cutoff else None

    def next_start(self, now: datetime) -> datetime | None:
        """The first window start after `now` (None if no day of the next year is a tip day)."""
        day = self.local_day(now)
        for offset in range(370):
            candidate = day + timedelta(days=offset)
            start = self.window(candidate)[0]
            if start > now and self.is_tip_day(candidate):
                return start
        return None

    def tip_days(self, first: date, count: int) -> list[date]:
        return [d for d in (first + timedelta(days=i) for i in range(count)) if self.is_tip_day(d)]


def local_zone(settings: Settings) -> ZoneInfo:
    """POLICYBOT_TIMEZONE: the tips' schedule and the day a feedback vote counts for."""
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"POLICYBOT_TIMEZONE={settings.timezone!r} is not a time zone; use e.g. Europe/Oslo"
        ) from exc


def holiday_calendar(code: str | None) -> Any:
    """The public holidays of a country ("NO"), or of a subdivision ("DE-BY"); None for no calendar."""
    if not code:
        return None
    country, _, subdivision = code.strip().upper().partition("-")
    try:
        return holidays.country_holidays(country, subdiv=subdivision or None)
    except NotImplementedError as exc:
        raise ConfigError(
            f"POLICYBOT_TIP_HOLIDAYS={code!r} is not a country code the holidays calendar knows "
            "(e.g. NO, SE, DE-BY); leave it empty to post on public holidays too"
        ) from exc


def slack_targets(channels: Iterable[str], default_lang: str) -> list[Target]:
    """POLICYBOT_TIP_SLACK_CHANNELS entries: a channel id, optionally with a language (`C0123:nb`)."""
    targets = []
    for spec in channels:
        channel, _, lang = spec.partition(":")
        lang = lang.strip() or default_lang
        if normalise(lang) != lang:
            raise ConfigError(
                f"POLICYBOT_TIP_SLACK_CHANNELS: {spec!r} has language {lang!r}; use a code such as en, nb, sv"
            )
        targets.append(Target("slack", channel.strip(), lang))
    return targets
