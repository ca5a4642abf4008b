"""Where the daily tip goes and when: targets, the schedule, and the platforms' tip deliverers.

bot/tips.py posts the tips (exactly once across replicas); this module describes what it works from:
a `Target` per channel or chat, the weekly `Schedule` (local time, cut-off, public holidays) and the
`Deliverer` each platform provides (adapters/slack_web.py, adapters/teams_delivery.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import WEEKDAYS, Settings
from bot.conversation import Reply
from bot.errors import ConfigError, PolicybotError
from bot.languages import normalise
from bot.store import TipStatus

log = logging.getLogger(__name__)


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
    holiday_calendar: HolidayCalendar | None = None  # None: tips are posted on holidays too

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


# Years of public holidays worked out at once: from last year on (a year outside them is asked for then).
HOLIDAY_YEARS = 10
HOLIDAYS_TIMEOUT = 60.0  # seconds for the process that works them out
_UNKNOWN_CODE = 3  # its exit status for a country (or subdivision) the calendar does not know
# Run by a short-lived interpreter of our own: importing `holidays` loads every country's rules
# (300 modules, +17 MiB that a server would otherwise keep for life) to tell ~12 dates a year.
_HOLIDAYS_CHILD = """
import json, sys
import holidays
country, subdivision, first, last = sys.argv[1], sys.argv[2] or None, int(sys.argv[3]), int(sys.argv[4])
try:
    calendar = holidays.country_holidays(country, subdiv=subdivision, years=range(first, last + 1))
except NotImplementedError:
    sys.exit(3)
print(json.dumps(sorted(day.isoformat() for day in calendar)))
"""


class HolidayCalendar:
    """The public holidays of a country ("NO") or a subdivision ("DE-BY"), from the maintained `holidays`
    calendar, worked out in a process of its own for HOLIDAY_YEARS at a time and kept as dates."""

    def __init__(self, code: str, *, first_year: int | None = None) -> None:
        self.code = code
        self.country, _, self.subdivision = code.strip().upper().partition("-")
        self._years: set[int] = set()
        self._days: set[date] = set()
        self._load(first_year if first_year is not None else date.today().year - 1)

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        if day.year not in self._years:
            try:
                self._load(day.year)
            except PolicybotError as exc:  # a tip on a holiday beats no tips at all
                log.error("public holidays of %s in %s unknown (%s); posting as on any day", self.code,
                          day.year, exc)  # fmt: skip
                self._years.add(day.year)
        return day in self._days

    def _load(self, first: int) -> None:
        last = first + HOLIDAY_YEARS - 1
        known = _worked_out.get((self.country, self.subdivision, first))
        if known is None:
            known = self._work_out(first, last)
            _worked_out[(self.country, self.subdivision, first)] = known
        self._days.update(known)
        self._years.update(range(first, last + 1))

    def _work_out(self, first: int, last: int) -> frozenset[date]:
        command = [
            sys.executable,
            "-c",
            _HOLIDAYS_CHILD,
            self.country,
            self.subdivision,
            str(first),
            str(last),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=HOLIDAYS_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"could not work out the public holidays of {self.code}: {exc}") from exc
        if done.returncode == _UNKNOWN_CODE:
            raise ConfigError(
                f"POLICYBOT_TIP_HOLIDAYS={self.code!r} is not a country code the holidays calendar knows "
                "(e.g. NO, SE, DE-BY); leave it empty to post on public holidays too"
            )
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise ConfigError(f"could not work out the public holidays of {self.code}: {reason}")
        return frozenset(date.fromisoformat(day) for day in json.loads(done.stdout))


# (country, subdivision, first year) -> its holidays: a process works each out once (a scheduler built
# again, as `tips preview` and the tests do, asks no other process).
_worked_out: dict[tuple[str, str, int], frozenset[date]] = {}


def holiday_calendar(code: str | None) -> HolidayCalendar | None:
    """The public holidays of a country ("NO"), or of a subdivision ("DE-BY"); None for no calendar."""
    return HolidayCalendar(code) if code and code.strip() else None


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
