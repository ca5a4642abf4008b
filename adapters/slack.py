"""Slack: direct messages, @mentions, `/policy`, buttons and App Home, on slack-bolt's async app.

Bolt runs inside our aiohttp server at `POST /slack/events` (events, slash commands and interactivity
share the URL). adapters/slack_guards.py checks every request's signature on its raw bytes and then its
body before bolt sees it (401 and 400, never a 500); bolt acknowledges Events API requests at once and
the slash command / buttons as the first thing their listeners do; the answer is sent afterwards, so
Slack's 3-second limit holds however slow the Web API is.

Text flows in two directions with different rules:
- in: Slack's escaped mrkdwn -> plain text for the core (`incoming_text`, adapters/slack_text.py), with
  mentions neutralised;
- out: the core's markdown -> Slack mrkdwn (`to_mrkdwn`), escaped, and neutralised again, so that text a
  user wrote can never ping `@channel`, a user group or a person when the bot repeats it. What a message
  looks like (Block Kit, buttons, App Home) is in adapters/slack_blocks.py; how the router's replies are
  sent in adapters/slack_platform.py (Web API calls and the daily tip in adapters/slack_web.py).

This module only translates: a Slack request becomes one of the router's events (bot/platform.py), and
bot/router.py runs the workflow (answer, admin command, vote, Ask HR, relay of HR's reply).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from adapters.guards import Rejection, body_of
from adapters.slack_blocks import ASK_HR, FEEDBACK_NO, FEEDBACK_YES, PICK, RELATED, home_view, neutralise
from adapters.slack_guards import SlackGuard
from adapters.slack_platform import SlackOrigin, SlackPlatform
from adapters.slack_text import incoming_text, lang_of_locale
from adapters.slack_web import CALL_ERRORS, failure
from bot.config import SlackSettings
from bot.platform import AskHr, Feedback, HrReply, Pick, Question
from bot.router import Router

log = logging.getLogger(__name__)

# Seconds a stopping server gives answers already acknowledged to Slack (which will not resend them)
# to be posted: room for a Retry-After or two; with the tips' 10 s (adapters/server.py), inside the usual
# 30 s between SIGTERM and SIGKILL.
SHUTDOWN_GRACE = 15.0
# How long an answered mention is remembered, so that editing the message does not get it answered again.
MENTION_CLAIM_TTL = timedelta(days=7)


def mention_key(event: dict[str, Any]) -> str:
    """What an @mention's claim is keyed by: its message, whatever event (an edit) brings it again."""
    return f"slack-mention:{event.get('channel')}:{event.get('ts')}"


# A person writing: a plain message, one also sent to the channel from a thread, one with a file attached.
# Other subtypes are edits, deletions, joins and the like.
USER_MESSAGE_SUBTYPES = (None, "thread_broadcast", "file_share")


# --------------------------------------------------------------------------------------------- the app


Listener = Callable[..., Awaitable[None]]


def _client_wins_over_token(record: logging.LogRecord) -> bool:
    return record.getMessage() != warning_client_prioritized_and_token_skipped()


class SlackBot:
    """The bolt app and its listeners: Slack requests in, the router's events out (sent by `platform`)."""

    def __init__(self, settings: SlackSettings, router: Router, platform: SlackPlatform) -> None:
        self.router = router
        self.platform = platform
        self.client = platform.client
        self.default_lang = router.default_lang
        self._locales: OrderedDict[str, str] = OrderedDict()  # user id -> language, from users.info
        self.guard = SlackGuard(settings.signing_secret)
        bolt_log = logging.getLogger("adapters.slack.bolt")
        # bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns on every start that
        # the client we pass wins over it; our client holds that very token, so the warning says nothing.
        bolt_log.addFilter(_client_wins_over_token)
        try:
            self.app = AsyncApp(
                client=self.client,
                signing_secret=settings.signing_secret,
                process_before_response=False,
                # `handle` verifies every request before bolt sees it (bolt's own check would log the
                # whole body of a forged request); Socket Mode needs no signature.
                request_verification_enabled=False,
                logger=bolt_log,
                name="policybot",
            )
        finally:
            bolt_log.removeFilter(_client_wins_over_token)
        self.app.middleware(self._dedupe)
        self._in_progress: set[asyncio.Future[Any]] = set()  # listeners still working after the ack
        self.app.event("message")(self._finished_at_shutdown(self._on_message))
        self.app.event("app_mention")(self._finished_at_shutdown(self._on_mention))
        self.app.event("app_home_opened")(self._finished_at_shutdown(self._on_home))
        self.app.command("/policy")(self._finished_at_shutdown(self._on_command))
        self.app.action(FEEDBACK_YES)(self._finished_at_shutdown(self._on_feedback))
        self.app.action(FEEDBACK_NO)(self._finished_at_shutdown(self._on_feedback))
        self.app.action(ASK_HR)(self._finished_at_shutdown(self._on_ask_hr))
        self.app.action(PICK)(self._finished_at_shutdown(self._on_pick))
        self.app.action(RELATED)(self._finished_at_shutdown(self._on_pick))

    @property
    def hr_channel(self) -> str | None:
        return self.platform.hr_channel

    async def open(self, _app: web.Application | None = None) -> None:
        """One HTTP session (keep-alive connections) for all Web API calls, instead of one per call."""
        self.client.session = aiohttp.ClientSession()

    async def close(self, _app: web.Application | None = None) -> None:
        """Let answers in progress finish (up to SHUTDOWN_GRACE), then close the HTTP session."""
        if self._in_progress:
            log.info("waiting for %d Slack answer(s) in progress", len(self._in_progress))
            _, unfinished = await asyncio.wait(set(self._in_progress), timeout=SHUTDOWN_GRACE)
            if unfinished:
                log.error(
                    "%d Slack answer(s) did not finish within %.0f s of shutdown and are lost",
                    len(unfinished), SHUTDOWN_GRACE,
                )  # fmt: skip
        if self.client.session is not None:
            await self.client.session.close()

    def _finished_at_shutdown(self, listener: Listener) -> Listener:
        """The listener, kept track of while it runs, so that `close` can wait for it.

        bolt acknowledges Slack first and runs the listener in a task of its own afterwards; Slack will
        not resend an acknowledged event, so an answer cut off by a restart would be lost for good.
        (`functools.wraps` keeps the argument names bolt injects by.)
        """

        @functools.wraps(listener)
        async def tracked(*args: Any, **kwargs: Any) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._in_progress.add(task)
                task.add_done_callback(self._in_progress.discard)
            await listener(*args, **kwargs)

        return tracked

    async def handle(self, request: web.Request) -> web.Response:
        """aiohttp -> bolt -> aiohttp, once adapters/slack_guards.py has checked the signature on the raw
        bytes (a 401 before anything else runs) and the body (a 400 for anything malformed)."""
        raw = await body_of(request)
        if isinstance(raw, Rejection):
            return raw.response()
        text = self.guard.read(raw, request.headers, request.content_type)
        if isinstance(text, Rejection):
            return text.response()
        # one value per name, as bolt's own aiohttp adapter gives them
        headers: dict[str, str | Sequence[str]] = dict(request.headers)
        try:
            bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=headers)
        except Exception as exc:  # bolt's reading of a signed body the shape check let through
            log.warning("signed Slack request refused (400): bolt cannot read it (%s)", type(exc).__name__)
            return Rejection(400, "not a Slack payload").response()
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    # ---- plumbing ------------------------------------------------------------------------------

    async def _dedupe(
        self, body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:  # bolt passes `context` and `next` by name
        """A retried event (same event_id) is acknowledged but not answered twice.

        The first delivery to arrive claims the id, whether it is the original or a retry, so a retry
        whose original was lost is still answered. A question's claim keeps it in progress until it is
        answered (bot/pending.py): stored before Slack is acknowledged, so that a process dying in
        between leaves it to a retry or another process, not to no one.
        """
        event_id = _event_id(body)
        event = body.get("event") or {}
        # An @mention's own claim (an edit must not be answered again) goes with the event id's: one
        # store round trip before the answer, not two.
        ahead = [(mention_key(event), MENTION_CLAIM_TTL)] if event.get("type") == "app_mention" else []
        # A reply in an HR thread may be HR's answer to relay, not a question: not kept in progress.
        question = None if self._in_hr_thread(event) else self._asked(event, context.bot_user_id, event_id)
        if event_id and not await self.router.first_delivery(
            event_id, ahead=ahead, platform=self.platform, question=question
        ):
            log.info("Slack event %s was already handled; acknowledging the retry", event_id)
            return BoltResponse(status=200, body="")
        return await next()

    def _in_hr_thread(self, event: dict[str, Any]) -> bool:
        thread = event.get("thread_ts")
        return (
            bool(self.hr_channel)
            and event.get("channel") == self.hr_channel
            and bool(thread)
            and (thread != event.get("ts"))
        )

    def _lang_hint(self, user: str | None) -> str | None:
        return self._locales.get(user) if user else None

    async def _user_lang(self, user: str) -> str:
        """The user's language from their Slack locale (users.info), remembered for later messages."""
        if user in self._locales:
            return self._locales[user]
        lang = self.default_lang
        try:
            info = await self.client.users_info(user=user, include_locale=True)
            lang = lang_of_locale((info.get("user") or {}).get("locale"), lang)
        except CALL_ERRORS as exc:
            log.warning("Slack users.info failed (%s); using %s", failure(exc)[0], lang)
            return lang
        self._locales[user] = lang
        if len(self._locales) > 10_000:
            self._locales.popitem(last=False)
        return lang

    # ---- events --------------------------------------------------------------------------------

    @staticmethod
    def _ignored(event: dict[str, Any], bot_user_id: str | None, *, edited_ok: bool = False) -> bool:
        """Edits, deletions, joins, other bots and our own messages are not questions (nor HR's replies).

        An edited message that mentions the bot comes again as an `app_mention` with a new event id and
        no subtype, only an `edited` field. `_on_mention` takes those (`edited_ok`): the mention may have
        been added by the edit, and it answers each message once whatever its edits.
        """
        return bool(
            event.get("subtype") not in USER_MESSAGE_SUBTYPES
            or (event.get("edited") and not edited_ok)
            or event.get("bot_id")
            or event.get("bot_profile")
            or not event.get("user")
            or event.get("user") == bot_user_id
        )

    def _asked(
        self, event: dict[str, Any], bot_user_id: str | None, delivery: str | None
    ) -> Question[SlackOrigin] | None:
        """The question an @mention or a direct message asks; None for any other event."""
        if event.get("type") == "app_mention":
            if self._ignored(event, bot_user_id, edited_ok=True):
                return None
            thread = event.get("thread_ts") or event.get("ts")
            once = mention_key(event)  # an edit of an answered message is not answered again
            return self._question(event, bot_user_id, thread, once, delivery)
        if event.get("type") != "message" or event.get("channel_type") != "im":
            return None
        if self._ignored(event, bot_user_id):
            return None
        return self._question(event, bot_user_id, event.get("thread_ts"), None, delivery)

    def _question(
        self,
        event: dict[str, Any],
        bot_user_id: str | None,
        thread: str | None,
        once: str | None,
        delivery: str | None,
    ) -> Question[SlackOrigin]:
        user = event.get("user")
        channel = str(event["channel"])
        return Question(
            SlackOrigin("message", channel=channel, thread=thread),
            incoming_text(str(event.get("text") or ""), bot_user_id),
            who=user,
            where=channel,
            lang_hint=self._lang_hint(user),
            once=once,
            once_ttl=MENTION_CLAIM_TTL,
            delivery=delivery,
        )

    async def _on_message(
        self, event: dict[str, Any], context: AsyncBoltContext, body: dict[str, Any]
    ) -> None:
        await self._on_question(event, context, body)

    async def _on_mention(
        self, event: dict[str, Any], context: AsyncBoltContext, body: dict[str, Any]
    ) -> None:
        await self._on_question(event, context, body)

    async def _on_question(
        self, event: dict[str, Any], context: AsyncBoltContext, body: dict[str, Any]
    ) -> None:
        if await self._relay_hr_reply(event, context.bot_user_id):
            return
        question = self._asked(event, context.bot_user_id, _event_id(body))
        if question is not None:
            await self.router.question(self.platform, question)

    async def _on_home(self, event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        user = str(event["user"])
        lang = await self._user_lang(user)
        await self.platform.call(
            "views.publish", user_id=user, view=home_view(self.router.conversation, lang)
        )

    async def _relay_hr_reply(self, event: dict[str, Any], bot_user_id: str | None) -> bool:
        """A reply in a thread of the HR channel may be HR answering "Ask HR": the router relays it.

        Both `message` and `app_mention` deliver a reply that mentions the bot; it is relayed once.
        """
        channel, thread = event.get("channel"), event.get("thread_ts")
        if not self.hr_channel or channel != self.hr_channel:
            return False
        if not thread or thread == event.get("ts"):
            return False  # a new post in the HR channel, not a reply in a thread
        text = str(event.get("text") or "")
        if bot_user_id:
            text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
        reply = HrReply(
            thread_id=f"{channel}:{thread}",
            text=neutralise(text).strip(),  # HR's mrkdwn (links kept), with no one pinged by the relay
            ignored=self._ignored(event, bot_user_id),
            once=f"slack-hr-reply:{channel}:{event.get('ts')}",
        )
        return await self.router.hr_reply(self.platform, reply)

    # ---- slash command -------------------------------------------------------------------------

    async def _on_command(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack()
        user = command.get("user_id")
        question = Question(
            SlackOrigin("command", payload=command),
            incoming_text(str(command.get("text") or "")),
            who=user,
            where=command.get("channel_id"),
            lang_hint=self._lang_hint(user),
            admin=True,  # `/policy reload|report|tip now|why …`, for an admin
            help_when_empty=True,
        )
        await self.router.question(self.platform, question)

    # ---- buttons -------------------------------------------------------------------------------

    def _action(self, body: dict[str, Any], action: dict[str, Any]) -> tuple[SlackOrigin, dict[str, str]]:
        """Who clicked where, and the button's value (as adapters/slack_blocks.py wrote it)."""
        try:
            value = json.loads(body["actions"][0]["value"])
        except (KeyError, IndexError, TypeError, ValueError):
            value = {}
        user = str((body.get("user") or {}).get("id") or "")
        origin = SlackOrigin("action", payload=body, action_id=str(action.get("action_id")), user=user)
        return origin, value if isinstance(value, dict) else {}

    async def _on_feedback(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        origin, value = self._action(body, action)
        lang = value.get("l") or self.default_lang
        vote = Feedback(origin, value.get("e") or "", action.get("action_id") == FEEDBACK_YES, lang)
        await self.router.feedback(self.platform, vote)

    async def _on_pick(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        origin, value = self._action(body, action)
        lang = value.get("l") or self.default_lang
        await self.router.pick(self.platform, Pick(origin, value.get("e") or "", lang, value.get("q", "")))

    async def _on_ask_hr(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        origin, value = self._action(body, action)
        question = value.get("q", "").strip()
        # The button is shown only with an HR channel; a forged one (no question, no user) is dropped.
        if not self.hr_channel or not question or not re.fullmatch(r"[UW][A-Z0-9]+", origin.user):
            return
        await self.router.ask_hr(self.platform, AskHr(origin, question, value.get("l") or self.default_lang))


def _event_id(body: dict[str, Any]) -> str | None:
    """An Events API callback's event id (what a retry of it repeats); None for other requests."""
    event_id = body.get("event_id") if body.get("type") == "event_callback" else None
    return str(event_id) if event_id else None


# ------------------------------------------------------------------------------------------- mounting


SLACK = web.AppKey("policybot_slack", SlackBot)


def mount(app: web.Application, bot: SlackBot) -> None:
    """Add `POST /slack/events`, with the Web API session opened and closed with the server."""
    app[SLACK] = bot
    app.on_startup.append(bot.open)
    app.on_cleanup.append(bot.close)
    app.router.add_post("/slack/events", bot.handle)
