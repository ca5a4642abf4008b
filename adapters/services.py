"""The composition root: settings in, every long-lived object of a running bot out, each built once.

`Services.open` loads the knowledge base and opens the store; `Services.assemble` (also used by tests,
with a store and conversation of their own) builds the rest in dependency order: the reloader, the
platform clients (Slack's Web API client, Teams' CloudAdapter and proactive sender), the tip scheduler
over their tip deliverers, the router (bot/router.py) and the platform adapters that feed it. `serve`
(adapters/server.py) mounts what this builds; `policybot tips post` uses the same deliverers without a
server. The Slack and Teams SDKs are imported only when their platform is configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bot.claims import Claims
from bot.config import Settings
from bot.conversation import Conversation
from bot.index_cache import Building, load_indexed
from bot.knowledge_loader import resolve_knowledge_dir
from bot.pending import Sweeper
from bot.reload import Reloader
from bot.review import ReviewReminder
from bot.router import Router
from bot.store import Store
from bot.tips import Deliverer, TipScheduler, local_zone
from bot.yaml_files import off_the_loop

if TYPE_CHECKING:
    from botbuilder.integration.aiohttp import CloudAdapter
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack import SlackBot
    from adapters.teams import TeamsBot
    from adapters.teams_delivery import TeamsDeliverer

# Whether Teams is served is told in the Teams adapter's log, where an admin looks for it.
teams_log = logging.getLogger("adapters.teams")


@dataclass(frozen=True)
class Services:
    """Everything a running bot shares: built by `open` or `assemble`, closed by `close`."""

    settings: Settings
    store: Store
    conversation: Conversation
    reloader: Reloader | None
    router: Router
    tips: TipScheduler
    review: ReviewReminder
    deliverers: tuple[Deliverer, ...]
    sweeper: Sweeper
    slack: SlackBot | None = None
    teams: TeamsBot | None = None

    @property
    def platforms(self) -> list[str]:
        """The chat platforms served: "slack", "teams"."""
        return [name for name, bot in (("slack", self.slack), ("teams", self.teams)) if bot is not None]

    @classmethod
    async def open(
        cls, settings: Settings, *, knowledge: Path | None = None, building: Building | None = None
    ) -> Services:
        """Load the knowledge base and index it (or read both back from the snapshot kept in
        `settings.cache_dir` when nothing they were made from has changed, or `building` has built it:
        bot/index_cache.py), open (and migrate) the store, then `assemble`."""
        directory = resolve_knowledge_dir(knowledge or settings.knowledge_dir)
        cache = settings.cache_dir
        kb, index = await off_the_loop(
            lambda: load_indexed(directory, cache, building=building), "policybot-knowledge-load"
        )
        store = await Store.open(
            settings.database_url,
            retention_days=settings.retention_days,
            tz=local_zone(settings),
            secret=settings.claim_secret,
        )
        conversation = Conversation(
            kb,
            default_lang=settings.default_lang,
            recorder=store,
            hr_contact=settings.hr_contact,
            index=index,
        )
        reloader = Reloader(conversation, directory, debounce_ms=settings.reload_debounce_ms, cache=cache)
        return cls.assemble(settings, conversation, store, reloader=reloader)

    @classmethod
    def assemble(
        cls,
        settings: Settings,
        conversation: Conversation,
        store: Store,
        *,
        reloader: Reloader | None = None,
    ) -> Services:
        """Build the rest around a conversation and an open store (no I/O happens here)."""
        if reloader is None and conversation.kb.source_dir:
            reloader = Reloader(conversation, Path(conversation.kb.source_dir))
        slack_parts = _slack_client(settings)
        teams_parts = _teams_client(settings, conversation, store)
        deliverers: list[Deliverer] = []
        if slack_parts is not None:
            from adapters.slack_web import SlackDeliverer

            deliverers.append(SlackDeliverer(slack_parts))
        if teams_parts is not None:
            deliverers.append(teams_parts[1])
        tips = TipScheduler.from_settings(settings, store, conversation, deliverers)
        review = ReviewReminder(lambda: conversation.kb, store, tz=local_zone(settings), at=settings.tip_time)
        router = Router(
            conversation,
            default_lang=settings.default_lang,
            admins=settings.admins,
            claims=Claims(store, lease=timedelta(seconds=settings.answer_lease_seconds)),
            escalations=store,
            installs=store,
            insights=store,
            reloader=reloader,
            tips=tips,
            review=review,
        )
        slack = teams = None
        if slack_parts is not None and settings.slack is not None:
            from adapters.slack import SlackBot
            from adapters.slack_platform import SlackPlatform

            slack_platform = SlackPlatform(
                slack_parts, conversation, settings.hr_slack_channel, settings.default_lang
            )
            slack = SlackBot(settings.slack, router, slack_platform)
            router.attach(slack_platform)  # a rejected knowledge-base edit is reported to HR
        if teams_parts is not None:
            from adapters.teams import TeamsBot
            from adapters.teams_platform import TeamsPlatform

            adapter, teams_deliverer = teams_parts
            teams_platform = TeamsPlatform(settings, conversation, teams_deliverer)
            teams = TeamsBot(router, teams_platform, adapter, anonymous=settings.teams is None)
            router.attach(teams_platform)
        sweeper = Sweeper(store, router, every=settings.pending_sweep_seconds)
        return cls(
            settings, store, conversation, reloader, router, tips, review, tuple(deliverers), sweeper,
            slack, teams,
        )  # fmt: skip

    async def close(self) -> None:
        """Write the questions still being recorded, then close the store."""
        try:
            await self.conversation.drain()
        finally:
            await self.store.close()


def _slack_client(settings: Settings) -> AsyncWebClient | None:
    if settings.slack is None:
        return None
    from adapters.slack_web import web_client

    return web_client(settings.slack)


def _teams_client(
    settings: Settings, conversation: Conversation, store: Store
) -> tuple[CloudAdapter, TeamsDeliverer] | None:
    """Teams' CloudAdapter and proactive sender when MicrosoftAppId is set, or anonymously in development."""
    if settings.teams is None and not settings.development:
        teams_log.info(
            "Teams endpoint not mounted: MicrosoftAppId is not set "
            "(anonymous local mode needs POLICYBOT_ENV=development)"
        )
        return None
    if settings.teams is None:
        teams_log.warning(
            "Teams endpoint /api/messages in anonymous local mode (POLICYBOT_ENV=development, no "
            "MicrosoftAppId): requests are NOT authenticated; never expose this to the internet"
        )
    from adapters.teams_delivery import TeamsDeliverer, make_adapter  # every botbuilder import: teams*.py

    adapter = make_adapter(settings)
    return adapter, TeamsDeliverer(settings, store, conversation=conversation, adapter=adapter)
