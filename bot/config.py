"""Settings, read from the environment only (12-factor), validated once at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path

from bot.errors import ConfigError
from bot.languages import normalise

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def _switch(env: Mapping[str, str], name: str, default: str, missing: list[str]) -> bool:
    """An on/off setting (also true/false, yes/no, 1/0); anything else is reported in `missing`."""
    value = env.get(name, default).strip().lower()
    if value not in ("on", "off", "true", "false", "1", "0", "yes", "no"):
        missing.append(f"{name}={value!r} must be on or off")
    return value in ("on", "true", "1", "yes")


def _seconds(env: Mapping[str, str], name: str, default: str, missing: list[str]) -> float:
    """A positive number of seconds (fractions allowed); anything else is reported in `missing`."""
    value = env.get(name, default).strip()
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 86_400:
        missing.append(f"{name}={value!r} must be a number of seconds, more than 0")
        return 0.0
    return seconds


def _pending_timing(env: Mapping[str, str], missing: list[str]) -> tuple[float, float]:
    """How long an answer in progress is leased, and how often the sweeper runs (bot/pending.py)."""
    lease = _seconds(env, "POLICYBOT_ANSWER_LEASE_SECONDS", "60", missing)
    sweep = _seconds(env, "POLICYBOT_PENDING_SWEEP_SECONDS", "15", missing)
    if 0 < lease <= sweep:
        missing.append(
            "POLICYBOT_PENDING_SWEEP_SECONDS must be shorter than POLICYBOT_ANSWER_LEASE_SECONDS "
            "(each sweep renews the leases of the answers in progress)"
        )
    return lease, sweep


def _clock(name: str, value: str) -> time:
    if not re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        raise ConfigError(f"{name}={value!r} is not a time of day; write it as HH:MM, e.g. 09:00")
    hours, minutes = (int(part) for part in value.strip().split(":"))
    try:
        return time(hours, minutes)
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r} is not a time of day; write it as HH:MM, e.g. 09:00") from exc


def normalise_database_url(url: str) -> str:
    """Accept the URL forms hosting platforms hand out and pick the driver for each: asyncpg for
    PostgreSQL, Python's own sqlite3 for SQLite (also for the `sqlite+aiosqlite://` URLs of earlier
    versions, which used aiosqlite)."""
    if url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite+aiosqlite://"):
        return "sqlite://" + url[len("sqlite+aiosqlite://") :]
    return url


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str = field(repr=False)
    signing_secret: str = field(repr=False)
    app_token: str | None = field(default=None, repr=False)
    api_url: str | None = None


TEAMS_CLOUDS = ("public", "gcc-high", "dod")


@dataclass(frozen=True)
class TeamsSettings:
    """The bot's Microsoft app registration, and the cloud whose identity endpoints it uses.

    `cloud` picks Bot Framework's documented endpoints (adapters/teams_auth.py); each of the four
    endpoint fields, when set, replaces that cloud's value (a private deployment, or the tests'
    local identity service). Their environment variables carry Bot Framework's own setting names.
    """

    app_id: str
    app_password: str = field(repr=False)
    app_type: str = "MultiTenant"
    tenant_id: str | None = None
    cloud: str = "public"
    openid_metadata_url: str | None = None  # ToBotFromChannelOpenIdMetadataUrl: keys of incoming tokens
    token_issuer: str | None = None  # ToBotFromChannelTokenIssuer: the `iss` of incoming tokens
    login_url: str | None = None  # ToChannelFromBotLoginUrl: authority of the bot's own token
    oauth_scope: str | None = None  # ToChannelFromBotOAuthScope: what the bot's own token is for
    validate_authority: bool = True  # ValidateAuthority: MSAL's instance discovery of login_url


@dataclass(frozen=True)
class Settings:
    knowledge_dir: Path | None = None
    default_lang: str = "en"
    environment: str = "production"
    database_url: str = "sqlite:///policybot.db"
    retention_days: int = 90
    slack: SlackSettings | None = None
    teams: TeamsSettings | None = None
    hr_slack_channel: str | None = None
    hr_teams_conversation: str | None = None
    admins: frozenset[str] = frozenset()
    tip_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    tip_time: time = time(9, 0)
    tip_cutoff: time = time(12, 0)
    timezone: str = "Europe/Oslo"
    tip_holidays: str | None = "NO"
    tip_slack_channels: tuple[str, ...] = ()
    hr_contact: str | None = None
    watch_knowledge: bool = True  # reload when a knowledge file changes (SIGHUP and `reload` always work)
    reload_debounce_ms: int = 1600  # the longest a burst of edits is gathered into one reload
    access_log: bool = (
        False  # one INFO line per HTTP request (POLICYBOT_ACCESS_LOG=on); costs CPU per request
    )
    answer_lease_seconds: float = (
        60.0  # an acknowledged question is this process's to answer (bot/pending.py)
    )
    pending_sweep_seconds: float = 15.0  # how often unanswered questions of dead processes are looked for
    cache_dir: Path | None = None  # where `serve` keeps its index snapshot (bot/index_cache.py)

    @property
    def claim_secret(self) -> str:
        """What event ids are hashed with in the store (bot/store_events.py): the platforms' own secrets,
        the same in every replica and never stored in the database."""
        slack = self.slack.signing_secret if self.slack is not None else ""
        teams = self.teams.app_password if self.teams is not None else ""
        return f"{slack}\x00{teams}" if slack or teams else ""

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:  # noqa: C901, PLR0912 — one branch per variable, each with its own message
        """Read every setting, and report every half-configured platform in one message."""
        env = os.environ if env is None else env
        missing: list[str] = []

        slack = None
        slack_keys = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
        if any(env.get(k) for k in slack_keys):
            absent = [k for k in slack_keys if not env.get(k)]
            if absent:
                missing.append("Slack is half-configured: set " + " and ".join(absent))
            else:
                slack = SlackSettings(
                    bot_token=env["SLACK_BOT_TOKEN"],
                    signing_secret=env["SLACK_SIGNING_SECRET"],
                    app_token=env.get("SLACK_APP_TOKEN") or None,
                    api_url=env.get("SLACK_API_URL") or None,
                )

        teams = None
        if env.get("MicrosoftAppId"):
            app_type = env.get("MicrosoftAppType") or "MultiTenant"
            if app_type not in ("MultiTenant", "SingleTenant", "UserAssignedMSI"):
                missing.append(
                    f"MicrosoftAppType={app_type!r} is not one of MultiTenant, SingleTenant, UserAssignedMSI"
                )
            if app_type != "UserAssignedMSI" and not env.get("MicrosoftAppPassword"):
                missing.append("Teams is half-configured: set MicrosoftAppPassword")
            if app_type in ("SingleTenant", "UserAssignedMSI") and not env.get("MicrosoftAppTenantId"):
                missing.append(f"MicrosoftAppType={app_type} needs MicrosoftAppTenantId")
            cloud = (env.get("POLICYBOT_TEAMS_CLOUD") or "public").strip().lower()
            if cloud not in TEAMS_CLOUDS:
                missing.append(f"POLICYBOT_TEAMS_CLOUD={cloud!r} must be one of {', '.join(TEAMS_CLOUDS)}")
            if env.get("ChannelService") and not env.get("POLICYBOT_TEAMS_CLOUD"):
                missing.append(
                    "ChannelService is not read: set POLICYBOT_TEAMS_CLOUD (public, gcc-high, dod)"
                )
            validate = env.get("ValidateAuthority", "true").strip().lower()
            if validate not in ("true", "false"):
                missing.append(f"ValidateAuthority={validate!r} must be true or false")
            teams = TeamsSettings(
                app_id=env["MicrosoftAppId"],
                app_password=env.get("MicrosoftAppPassword", ""),
                app_type=app_type,
                tenant_id=env.get("MicrosoftAppTenantId") or None,
                cloud=cloud,
                openid_metadata_url=env.get("ToBotFromChannelOpenIdMetadataUrl") or None,
                token_issuer=env.get("ToBotFromChannelTokenIssuer") or None,
                login_url=env.get("ToChannelFromBotLoginUrl") or None,
                oauth_scope=env.get("ToChannelFromBotOAuthScope") or None,
                validate_authority=validate == "true",
            )

        default_lang = env.get("POLICYBOT_DEFAULT_LANG", "en")
        if normalise(default_lang) != default_lang:  # the knowledge base's languages are checked on load
            missing.append(
                f"POLICYBOT_DEFAULT_LANG={default_lang!r} must be a language code such as en, nb, sv"
            )

        tip_days = _list(env.get("POLICYBOT_TIP_DAYS", "mon,tue,wed,thu,fri"))
        bad_days = [d for d in tip_days if d.lower() not in WEEKDAYS]
        if bad_days:
            missing.append(f"POLICYBOT_TIP_DAYS has unknown days {bad_days}; use {','.join(WEEKDAYS)}")

        retention = env.get("POLICYBOT_RETENTION_DAYS", "90")
        if not retention.isdigit() or int(retention) < 1:
            missing.append(f"POLICYBOT_RETENTION_DAYS={retention!r} must be a whole number of days >= 1")

        watch = _switch(env, "POLICYBOT_WATCH_KNOWLEDGE", "on", missing)
        debounce = env.get("POLICYBOT_RELOAD_DEBOUNCE_MS", "1600").strip()
        if not debounce.isdigit():
            missing.append(f"POLICYBOT_RELOAD_DEBOUNCE_MS={debounce!r} must be a number of milliseconds")

        access_log = _switch(env, "POLICYBOT_ACCESS_LOG", "off", missing)
        lease, sweep = _pending_timing(env, missing)

        if missing:
            raise ConfigError("; ".join(missing))

        knowledge = env.get("POLICYBOT_KNOWLEDGE")
        return cls(
            knowledge_dir=Path(knowledge) if knowledge else None,
            default_lang=default_lang,
            environment=env.get("POLICYBOT_ENV", "production"),
            database_url=normalise_database_url(env.get("DATABASE_URL") or "sqlite:///policybot.db"),
            retention_days=int(retention),
            slack=slack,
            teams=teams,
            hr_slack_channel=env.get("POLICYBOT_HR_CHANNEL") or None,
            hr_teams_conversation=env.get("POLICYBOT_HR_TEAMS_CONVERSATION") or None,
            admins=frozenset(_list(env.get("POLICYBOT_ADMINS"))),
            tip_days=tuple(d.lower() for d in tip_days),
            tip_time=_clock("POLICYBOT_TIP_TIME", env.get("POLICYBOT_TIP_TIME", "09:00")),
            tip_cutoff=_clock("POLICYBOT_TIP_CUTOFF", env.get("POLICYBOT_TIP_CUTOFF", "12:00")),
            timezone=env.get("POLICYBOT_TIMEZONE", "Europe/Oslo"),
            tip_holidays=env.get("POLICYBOT_TIP_HOLIDAYS", "NO") or None,
            tip_slack_channels=_list(env.get("POLICYBOT_TIP_SLACK_CHANNELS")),
            hr_contact=env.get("POLICYBOT_HR_CONTACT") or None,
            watch_knowledge=watch,
            reload_debounce_ms=int(debounce),
            access_log=access_log,
            answer_lease_seconds=lease,
            pending_sweep_seconds=sweep,
            cache_dir=cache_dir_from_env(env),
        )


def cache_dir_from_env(env: Mapping[str, str]) -> Path | None:
    """Where the confidence fitted on a knowledge base and snapshots of its index are kept:
    POLICYBOT_CACHE_DIR, else the cache folder of the user running policybot (from `env`, else the
    process's environment, as its home is); "off": nowhere (everything is built anew)."""
    configured = env.get("POLICYBOT_CACHE_DIR")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    xdg = env.get("XDG_CACHE_HOME") or os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "policybot"
