"""The one aiohttp application that hosts every configured platform, plus `/healthz`, and `serve`.

What runs is built once by the composition root (adapters/services.py); each platform module exposes
`mount(app, bot)` for the adapter built there, and a platform whose settings are absent has none.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.log import access_logger

from adapters.guards import quiet_client_errors
from adapters.services import Services
from bot.config import Settings
from bot.errors import ConfigError
from bot.index_cache import Building

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

log = logging.getLogger(__name__)

# Seconds a stopping server waits for the tip being delivered; the answers Slack is owed get theirs in
# adapters/slack.py. Together they stay inside the usual 30 s between SIGTERM and SIGKILL.
TIPS_STOP_GRACE = 10.0


SERVICES = web.AppKey("policybot_services", Services)


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    kb = services.conversation.kb
    reloader = services.reloader
    return web.json_response(
        {
            "status": "ok",
            "knowledge_version": kb.version,
            "entries": len(kb.entries),
            "platforms": services.platforms,
            # served version, when it was loaded, and the newest edit that was rejected (if any)
            "knowledge": reloader.status() if reloader is not None else None,
        }
    )


def build_app(services: Services) -> web.Application:
    """The aiohttp application: `/healthz`, and the endpoint of each platform `services` built."""
    # Slack and Teams payloads are small; 1 MiB leaves room for large Teams activities with attachments.
    app = web.Application(client_max_size=1024 * 1024)
    quiet_client_errors()  # a request aiohttp cannot parse is a 400 and one log line, not a traceback
    app[SERVICES] = services
    app.router.add_get("/healthz", healthz)
    if services.slack is not None:
        from adapters import slack

        slack.mount(app, services.slack)
    if services.teams is not None:
        from adapters import teams  # every botbuilder import lives in adapters/teams*.py

        teams.mount(app, services.teams)
    return app


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


async def serve(
    settings: Settings, *, port: int, slack_socket_mode: bool = False, building: Building | None = None
) -> None:
    """Run the server until SIGTERM or SIGINT, then close connections and the database cleanly.
    `building`: the index snapshot, being built beside this start (bot/index_cache.py)."""
    app_token = check_socket_mode(settings) if slack_socket_mode else None
    services = await Services.open(settings, building=building)
    runner: web.AppRunner | None = None
    socket_mode: AsyncSocketModeHandler | None = None
    tips: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None
    review: asyncio.Task[None] | None = None
    sweeper: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        app = build_app(services)
        reloader = services.reloader
        assert reloader is not None  # Services.open makes one
        loop.add_signal_handler(signal.SIGHUP, reloader.request, "SIGHUP")
        if settings.watch_knowledge:
            watcher = asyncio.create_task(reloader.watch(stop), name="policybot-knowledge-watch")
        # aiohttp's access log (a formatted INFO line per request) only when asked for: POLICYBOT_ACCESS_LOG.
        runner = web.AppRunner(app, access_log=access_logger if settings.access_log else None)
        await runner.setup()
        await _listen(runner, port)
        log.info(
            "policybot %s serving on port %s: %s",
            services.conversation.kb.version, port,
            ", ".join(services.platforms) or "no chat platform configured (only /healthz)",
        )  # fmt: skip
        if app_token is not None and services.slack is not None:
            # Socket Mode support is loaded only when asked for.
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            socket_mode = AsyncSocketModeHandler(services.slack.app, app_token)
            await socket_mode.connect_async()  # type: ignore[no-untyped-call]  # bolt leaves it unannotated
            log.info("connected to Slack over Socket Mode")
        settle_memory()
        # The daily tip: every replica runs a scheduler; the database makes each post happen once.
        tips = asyncio.create_task(services.tips.run_forever(stop), name="policybot-tips")
        review = asyncio.create_task(services.review.run_forever(stop), name="policybot-review-notice")
        # Questions acknowledged by a process that died before answering: answered by whichever lives.
        sweeper = asyncio.create_task(services.sweeper.run_forever(stop), name="policybot-pending-answers")
        await stop.wait()
        log.info("shutting down")
    finally:
        stop.set()  # also when leaving through an error or cancellation: the tips must not wait for it
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        await _stop_tasks(watcher, review, sweeper, tips=tips)
        if socket_mode is not None:
            await socket_mode.close_async()  # type: ignore[no-untyped-call]  # as connect_async
        if runner is not None:
            await runner.cleanup()
        await services.close()  # questions still being recorded are not lost


def settle_memory() -> None:
    """After start-up: collect its garbage once, then leave what it built out of later collections.

    Modules, the knowledge base and its index are most of the objects the garbage collector would
    otherwise walk again in every full collection while the server answers (`gc.freeze`); they live as
    long as the process, or are freed by reference counting when a reload replaces them.
    """
    gc.collect()
    gc.freeze()


async def _listen(runner: web.AppRunner, port: int) -> None:
    try:
        await web.TCPSite(runner, "0.0.0.0", port).start()  # a server listens on all interfaces
    except OSError as exc:  # e.g. the port is taken: one line for the operator, not a traceback
        raise ConfigError(
            f"cannot listen on port {port}: {exc.strerror or exc} (set PORT or --port to a free port)"
        ) from exc


async def _stop_tasks(*background: asyncio.Task[None] | None, tips: asyncio.Task[None] | None) -> None:
    """Cancel the background tasks; the tip being delivered gets `TIPS_STOP_GRACE` to finish first."""
    for task in background:
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
