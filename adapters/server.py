"""The one aiohttp application that hosts every configured platform, plus `/healthz`.

Each platform module exposes `mount(app, ctx)`; a platform whose settings are absent is not mounted.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config import Settings
from bot.conversation import Conversation
from bot.errors import ConfigError
from bot.knowledge_loader import load_knowledge, resolve_knowledge_dir
from bot.reload import Reloader
from bot.review import ReviewReminder
from bot.store import Store
from bot.tips import Deliverer, TipScheduler, local_zone

log = logging.getLogger(__name__)

# Seconds a stopping server waits for the tip being delivered; the answers Slack is owed get theirs in
# adapters/slack.py. Together they stay inside the usual 30 s between SIGTERM and SIGKILL.
TIPS_STOP_GRACE = 10.0


@dataclass
class ServerContext:
    """What every platform adapter needs: settings, the conversation core and the store."""

    settings: Settings
    conversation: Conversation
    store: Any  # bot.store.Store once it exists
    platforms: list[str] = field(default_factory=list)
    reloader: Reloader | None = None  # build_app makes one (for `reload`) when serve() did not
    tips: TipScheduler | None = None  # the tip scheduler, for the admins' "tip now" (set by build_app)
    review: ReviewReminder | None = None  # the weekly "due for review" notice to HR (set by build_app)


CTX = web.AppKey("policybot_ctx", ServerContext)


async def healthz(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    kb = ctx.conversation.kb
    return web.json_response(
        {
            "status": "ok",
            "knowledge_version": kb.version,
            "entries": len(kb.entries),
            "platforms": ctx.platforms,
            # served version, when it was loaded, and the newest edit that was rejected (if any)
            "knowledge": ctx.reloader.status() if ctx.reloader is not None else None,
        }
    )


def build_app(ctx: ServerContext) -> web.Application:
    # Slack and Teams payloads are small; 1 MiB leaves room for large Teams activities with attachments.
    app = web.Application(client_max_size=1024 * 1024)
    app[CTX] = ctx
    if ctx.reloader is None and ctx.conversation.kb.source_dir:
        ctx.reloader = Reloader(ctx.conversation, Path(ctx.conversation.kb.source_dir))
    app.router.add_get("/healthz", healthz)
    if ctx.review is None and ctx.store is not None and hasattr(ctx.store, "claim_event"):
        conversation = ctx.conversation
        ctx.review = ReviewReminder(
            lambda: conversation.kb, ctx.store, tz=local_zone(ctx.settings), at=ctx.settings.tip_time
        )
    if ctx.settings.slack is not None:
        from adapters import slack

        slack.mount(app, ctx)
        ctx.platforms.append("slack")
    # Teams mounts itself when MicrosoftAppId is set, or anonymously in development; it logs why not.
    from adapters import teams  # every botbuilder import lives in adapters/teams*.py

    if teams.mount(app, ctx):
        ctx.platforms.append("teams")
    if ctx.tips is None and ctx.store is not None:
        ctx.tips = TipScheduler.from_settings(ctx.settings, ctx.store, ctx.conversation, tip_deliverers(app))
    return app


def tip_deliverers(app: web.Application) -> list[Deliverer]:
    """The daily-tip Deliverers of the platforms mounted on `app` (see bot/tips.py)."""
    from adapters import slack, slack_web, teams  # already imported by build_app; kept local like there

    found: list[Deliverer] = []
    if slack.SLACK in app:
        found.append(slack_web.SlackDeliverer(app[slack.SLACK].client))
    teams_deliverer = teams.deliverer(app)
    if teams_deliverer is not None:
        found.append(teams_deliverer)
    return found


def check_socket_mode(settings: Settings) -> str:
    """The app-level token Socket Mode needs, or a ConfigError naming what is missing."""
    if settings.slack is None:
        raise ConfigError(
            "--slack-socket-mode needs Slack configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"
        )
    if not settings.slack.app_token:
        raise ConfigError(
            "--slack-socket-mode needs SLACK_APP_TOKEN (an app-level token, xapp-…, with connections:write)"
        )
    return settings.slack.app_token


async def serve(settings: Settings, *, port: int, slack_socket_mode: bool = False) -> None:
    """Run the server until SIGTERM or SIGINT, then close connections and the database cleanly."""
    app_token = check_socket_mode(settings) if slack_socket_mode else None
    directory = resolve_knowledge_dir(settings.knowledge_dir)
    kb = await load_knowledge(directory)
    store = await Store.open(
        settings.database_url, retention_days=settings.retention_days, tz=local_zone(settings)
    )
    runner: web.AppRunner | None = None
    socket_mode: Any = None
    tips: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None
    review: asyncio.Task[None] | None = None
    ctx: ServerContext | None = None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        conversation = Conversation(
            kb, default_lang=settings.default_lang, recorder=store, hr_contact=settings.hr_contact
        )
        reloader = Reloader(conversation, directory, debounce_ms=settings.reload_debounce_ms)
        ctx = ServerContext(settings=settings, conversation=conversation, store=store, reloader=reloader)
        app = build_app(ctx)  # the platforms register their HR notifiers on the reloader
        loop.add_signal_handler(signal.SIGHUP, reloader.request, "SIGHUP")
        if settings.watch_knowledge:
            watcher = asyncio.create_task(reloader.watch(stop), name="policybot-knowledge-watch")
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            await web.TCPSite(runner, "0.0.0.0", port).start()  # a server listens on all interfaces
        except OSError as exc:  # e.g. the port is taken: one line for the operator, not a traceback
            raise ConfigError(
                f"cannot listen on port {port}: {exc.strerror or exc} (set PORT or --port to a free port)"
            ) from exc
        log.info(
            "policybot %s serving on port %s: %s",
            kb.version, port, ", ".join(ctx.platforms) or "no chat platform configured (only /healthz)",
        )  # fmt: skip
        if app_token is not None:
            # Socket Mode support is loaded only when asked for.
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            from adapters.slack import SLACK

            socket_mode = AsyncSocketModeHandler(app[SLACK].app, app_token)
            await socket_mode.connect_async()
            log.info("connected to Slack over Socket Mode")
        # The daily tip: every replica runs a scheduler; the database makes each post happen once.
        assert ctx.tips is not None  # build_app made it: the store is open
        tips = asyncio.create_task(ctx.tips.run_forever(stop), name="policybot-tips")
        if ctx.review is not None:
            review = asyncio.create_task(ctx.review.run_forever(stop), name="policybot-review-notice")
        await stop.wait()
        log.info("shutting down")
    finally:
        stop.set()  # also when leaving through an error or cancellation: the tips must not wait for it
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        for task in (watcher, review):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if tips is not None:  # `stop` is set: the tip being delivered is finished, the rest wait
            finished, _ = await asyncio.wait({tips}, timeout=TIPS_STOP_GRACE)
            if not finished:
                log.error("the tip being delivered did not finish within %.0f s; it is left unknown",
                          TIPS_STOP_GRACE)  # fmt: skip
            tips.cancel()
            await asyncio.gather(tips, return_exceptions=True)
        if socket_mode is not None:
            await socket_mode.close_async()
        if runner is not None:
            await runner.cleanup()
        if ctx is not None:
            await ctx.conversation.drain()  # questions still being recorded are not lost
        await store.close()
