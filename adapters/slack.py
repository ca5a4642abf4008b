"""Slack: direct messages, @mentions, `/policy`, buttons and App Home, on slack-bolt's async app.

Bolt runs inside our aiohttp server at `POST /slack/events` (events, slash commands and interactivity
share the URL). Bolt verifies every request's signature, acknowledges Events API requests at once and
the slash command / buttons as the first thing their listeners do; the answer is sent afterwards, so
Slack's 3-second limit holds however slow the Web API is.

Text flows in two directions with different rules:
- in: Slack's escaped mrkdwn -> plain text for the core (`incoming_text`, here), with mentions neutralised;
- out: the core's markdown -> Slack mrkdwn (`to_mrkdwn`), escaped, and neutralised again, so that text a
  user wrote can never ping `@channel`, a user group or a person when the bot repeats it. What a message
  looks like (Block Kit, buttons, App Home) is in adapters/slack_blocks.py; how it is sent to the Web API
  (and the daily tip) in adapters/slack_web.py; this module is the app.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.response import BoltResponse

from adapters.slack_blocks import (
    ASK_HR,
    FEEDBACK_NO,
    FEEDBACK_YES,
    PICK,
    RELATED,
    Rendered,
    chunks,
    escape,
    home_view,
    markdown_message,
    neutralise,
    render,
    section,
    thanked,
    to_mrkdwn,
)
from adapters.slack_web import CALL_ERRORS, SlackSender, failure, web_client
from bot.admin import Admin
from bot.config import Settings
from bot.conversation import Conversation, Message
from bot.errors import PolicybotError
from bot.reload import ReloadResult

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = 1.0  # seconds the event-id record may take before Slack's 3-second ack is at risk
# Seconds a stopping server gives answers already acknowledged to Slack (which will not resend them)
# to be posted: room for a Retry-After or two; with the tips' 10 s (adapters/server.py), inside the usual
# 30 s between SIGTERM and SIGKILL.
SHUTDOWN_GRACE = 15.0
# How long an answered mention is remembered, so that editing the message does not get it answered again.
MENTION_CLAIM_TTL = timedelta(days=7)

# ------------------------------------------------------------------------------------- incoming text

_CHANNEL_LINK = re.compile(r"<#(C[A-Z0-9]+)(?:\|([^>]*))?>")
_URL_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")


def incoming_text(text: str, bot_user_id: str | None = None) -> str:
    """Slack message text -> the plain text the core matches on (bot mention removed, mentions inert)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = neutralise(text)
    text = _CHANNEL_LINK.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _URL_LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split()).strip(" ,:;")


def lang_of_locale(locale: str | None, default: str) -> str:
    """Slack user locale ("nb-NO", "en-US", …) -> one of our languages; Norwegian in any form is nb."""
    if not locale:
        return default
    prefix = locale.lower().split("-")[0].split("_")[0]
    if prefix in ("nb", "no", "nn"):
        return "nb"
    if prefix == "en":
        return "en"
    return default


class Claims(Protocol):
    async def claim_event(self, event_id: str, *, ttl: timedelta = ...) -> bool: ...


class EscalationRoutes(Protocol):
    """Where "Ask HR" threads lead back to (bot.store.Store): the asker's user id, per HR thread."""

    async def save_escalation(
        self, platform: str, thread_id: str, route: dict[str, Any], lang: str
    ) -> None: ...
    async def escalation(self, platform: str, thread_id: str) -> Any: ...


# A person writing: a plain message, one also sent to the channel from a thread, one with a file attached.
# Other subtypes are edits, deletions, joins and the like.
USER_MESSAGE_SUBTYPES = (None, "thread_broadcast", "file_share")


class EventClaims:
    """In-process record of seen event ids, for a store without `claim_event`; holds per process only."""

    def __init__(self, clock: Any = time.monotonic, limit: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._clock = clock
        self._limit = limit

    async def claim_event(self, event_id: str, *, ttl: timedelta = timedelta(hours=1)) -> bool:
        now = self._clock()
        while self._seen and (next(iter(self._seen.values())) <= now or len(self._seen) >= self._limit):
            self._seen.popitem(last=False)
        if event_id in self._seen:
            return False
        self._seen[event_id] = now + ttl.total_seconds()
        return True


# --------------------------------------------------------------------------------------------- the app


Listener = Callable[..., Awaitable[None]]


def _client_wins_over_token(record: logging.LogRecord) -> bool:
    return record.getMessage() != warning_client_prioritized_and_token_skipped()


class SlackBot(SlackSender):
    """The bolt app and its listeners: turns Slack requests into `Message`s and `Reply`s into Block Kit."""

    def __init__(
        self, settings: Settings, conversation: Conversation, claims: Claims, ctx: Any = None
    ) -> None:
        assert settings.slack is not None
        self.settings = settings
        self.conversation = conversation
        self.claims = claims
        self.ctx = ctx  # the server context: reloader, tip scheduler and store for admin commands
        self._local_claims = EventClaims()
        self.client = web_client(settings.slack)
        self.hr_channel = settings.hr_slack_channel
        self.routes: EscalationRoutes | None = None  # set by mount() when the store keeps them
        self._locales: OrderedDict[str, str] = OrderedDict()  # user id -> language, from users.info
        bolt_log = logging.getLogger("adapters.slack.bolt")
        # bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns on every start that
        # the client we pass wins over it; our client holds that very token, so the warning says nothing.
        bolt_log.addFilter(_client_wins_over_token)
        try:
            self.app = AsyncApp(
                client=self.client,
                signing_secret=settings.slack.signing_secret,
                process_before_response=False,
                request_verification_enabled=True,
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
        """aiohttp -> bolt -> aiohttp; a bad signature is a 401 from bolt, before anything else runs."""
        bolt_response = await self.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    # ---- plumbing ------------------------------------------------------------------------------

    async def _dedupe(
        self, body: dict[str, Any], next: Any
    ) -> BoltResponse | None:  # bolt passes `next` by name
        """A retried event (same event_id) is acknowledged but not answered twice.

        The first delivery to arrive claims the id, whether it is the original or a retry, so a retry
        whose original was lost is still answered.
        """
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not await self._claim(str(event_id)):
            log.info("Slack event %s was already handled; acknowledging the retry", event_id)
            return BoltResponse(status=200, body="")
        return await next()  # type: ignore[no-any-return]

    async def _claim(self, event_id: str, ttl: timedelta = timedelta(hours=1)) -> bool:
        """Claim in the store; if it is down or slow, in this process, so Slack still gets its ack in time."""
        try:
            async with asyncio.timeout(CLAIM_TIMEOUT):
                return await self.claims.claim_event(event_id, ttl=ttl)
        except (PolicybotError, TimeoutError) as exc:
            log.warning(
                "could not record Slack event %s in the store (%s); deduping in-process", event_id, exc
            )
            return await self._local_claims.claim_event(event_id, ttl=ttl)

    def _lang_hint(self, user: str | None) -> str | None:
        return self._locales.get(user) if user else None

    async def _user_lang(self, user: str) -> str:
        """The user's language from their Slack locale (users.info), remembered for later messages."""
        if user in self._locales:
            return self._locales[user]
        lang = self.settings.default_lang
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

    async def _answer_event(
        self, event: dict[str, Any], bot_user_id: str | None, thread_ts: str | None
    ) -> None:
        user = event.get("user")
        text = incoming_text(str(event.get("text") or ""), bot_user_id)
        message = Message(text=text, lang_hint=self._lang_hint(user), who=user, where=event.get("channel"))
        reply = await self.conversation.handle(message)
        await self._post(str(event["channel"]), reply, thread_ts)

    async def _on_message(self, event: dict[str, Any], context: Any) -> None:
        if await self._relay_hr_reply(event, context.bot_user_id):
            return
        if event.get("channel_type") != "im" or self._ignored(event, context.bot_user_id):
            return
        await self._answer_event(event, context.bot_user_id, event.get("thread_ts"))

    async def _on_mention(self, event: dict[str, Any], context: Any) -> None:
        if await self._relay_hr_reply(event, context.bot_user_id):
            return
        if self._ignored(event, context.bot_user_id, edited_ok=True):
            return
        channel, ts = event.get("channel"), event.get("ts")
        if not await self._claim(f"slack-mention:{channel}:{ts}", MENTION_CLAIM_TTL):
            log.info("Slack message with a mention was answered already (an edit of it); not again")
            return
        await self._answer_event(event, context.bot_user_id, event.get("thread_ts") or ts)

    async def _on_home(self, event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        user = str(event["user"])
        lang = await self._user_lang(user)
        await self._call("views.publish", user_id=user, view=home_view(self.conversation, lang))

    # ---- slash command -------------------------------------------------------------------------

    async def _on_command(self, ack: Any, command: dict[str, Any]) -> None:
        await ack()
        user = command.get("user_id")
        text = incoming_text(str(command.get("text") or ""))
        if text and await self._admin_command(command, text, user):
            return
        if text:
            message = Message(
                text=text, lang_hint=self._lang_hint(user), who=user, where=command.get("channel_id")
            )
            reply = await self.conversation.handle(message)
        else:
            reply = self.conversation.help(self._lang_hint(user) or self.settings.default_lang)
        await self._ephemeral(command, reply)

    async def _admin_command(self, command: dict[str, Any], text: str, user: str | None) -> bool:
        """`/policy reload|report|tip now|why …`: run it for an admin, refuse it for anyone else."""
        ctx = self.ctx
        admin = Admin(
            self.settings.admins,
            self.conversation,
            reloader=getattr(ctx, "reloader", None),
            tips=getattr(ctx, "tips", None),
            store=getattr(ctx, "store", None),
        )
        lang = self._lang_hint(user) or self.settings.default_lang
        answer = await admin.run(text, user, lang)
        if answer is None:
            return False
        await self._ephemeral_message(command, markdown_message(answer), replace=False)
        return True

    async def notify_hr(self, result: ReloadResult) -> None:
        """Tell the HR channel that an edit was rejected (and what to fix), or is fixed."""
        reloader = getattr(self.ctx, "reloader", None)
        if not self.hr_channel or reloader is None:
            return
        await self.post_to_hr(lambda lang: reloader.message(result, lang))

    async def post_to_hr(self, text_in: Callable[[str], str]) -> None:
        """Post the core's markdown (in the bot's default language) to the HR channel, if there is one."""
        if not self.hr_channel:
            return
        message = markdown_message(text_in(self.settings.default_lang))
        await self._call(
            "chat.postMessage", channel=self.hr_channel, text=message.text, blocks=message.blocks
        )

    # ---- buttons -------------------------------------------------------------------------------

    @staticmethod
    def _action_value(body: dict[str, Any]) -> dict[str, str]:
        try:
            value = json.loads(body["actions"][0]["value"])
        except (KeyError, IndexError, TypeError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def _entry_ok(self, entry_id: str | None) -> bool:
        """Buttons outlive knowledge-base reloads: an entry may have been renamed or removed since."""
        return bool(entry_id) and entry_id in self.conversation.kb.entries

    async def _on_feedback(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        value = self._action_value(body)
        entry_id, lang = value.get("e"), value.get("l") or self.settings.default_lang
        if not entry_id or not self._entry_ok(entry_id):
            return
        thanks = await self.conversation.feedback(entry_id, action.get("action_id") == FEEDBACK_YES, lang)
        original = body.get("message")
        container = body.get("container") or {}
        if original and not container.get("is_ephemeral"):
            blocks = thanked(list(original.get("blocks") or []), thanks)
            channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
            await self._call(
                "chat.update", channel=channel, ts=original.get("ts"), text=original.get("text") or thanks,
                blocks=blocks,
            )  # fmt: skip
        else:
            # Slack does not send an ephemeral message's content back; re-render the answer to thank in place.
            reply = await self.conversation.answer_entry(entry_id, lang)
            message = render(reply, ask_hr=self.hr_channel is not None)
            rendered = Rendered(message.text, thanked(message.blocks, thanks))
            await self._ephemeral_message(body, rendered, replace=True)

    async def _on_ask_hr(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        value = self._action_value(body)
        user = str((body.get("user") or {}).get("id") or "")
        lang = value.get("l") or self.settings.default_lang
        question = value.get("q", "").strip()
        if not self.hr_channel or not question or not re.fullmatch(r"[UW][A-Z0-9]+", user):
            return
        # The asker pressed the button, so mentioning them to HR is wanted. Their words go in after the
        # markdown conversion, escaped and inert: a `[title](url)` they typed must not become a link
        # posted in the bot's name.
        hr_lang = self.settings.default_lang
        template = self.conversation.say("escalation_to_hr", hr_lang, question="\x02", user="\x01")
        text = to_mrkdwn(template).replace("\x01", f"<@{user}>").replace("\x02", neutralise(escape(question)))
        posted = await self._call(
            "chat.postMessage",
            channel=self.hr_channel,
            text=text,
            blocks=[section(c) for c in chunks(text)],
        )
        if posted is not None and posted.get("ts"):
            await self._remember_escalation(
                str(posted.get("channel") or self.hr_channel), posted["ts"], user, lang
            )
        key = "escalation_sent" if posted is not None else "escalation_failed"
        notice = to_mrkdwn(self.conversation.say(key, lang))
        await self._ephemeral_message(body, Rendered(notice, [section(notice)]), replace=False)

    # ---- HR's replies to "Ask HR" ------------------------------------------------------------------

    async def _remember_escalation(self, channel: str, ts: str, user: str, lang: str) -> None:
        """Keep only how to reach the asker (their user id) for the HR thread; never the question."""
        if self.routes is None:
            return
        try:
            await self.routes.save_escalation("slack", f"{channel}:{ts}", {"user": user}, lang)
        except PolicybotError as exc:
            log.warning("HR's reply to this escalation cannot be relayed: %s", exc)

    async def _relay_hr_reply(self, event: dict[str, Any], bot_user_id: str | None) -> bool:
        """Relay HR's reply in an "Ask HR" thread to the asker in a DM; True if the event was that.

        Both `message` and `app_mention` deliver a reply that mentions the bot; it is relayed once.
        """
        channel, thread = event.get("channel"), event.get("thread_ts")
        if self.routes is None or not self.hr_channel or channel != self.hr_channel:
            return False
        if not thread or thread == event.get("ts"):
            return False  # a new post in the HR channel, not a reply in a thread
        if self._ignored(event, bot_user_id):
            return True  # edits, deletions, our own relay notes and other bots: never relayed
        try:
            found = await self.routes.escalation("slack", f"{channel}:{thread}")
        except PolicybotError as exc:
            log.error("could not look up the escalation for an HR reply: %s", exc)
            return True
        if found is None:
            return False  # not an escalation thread (or expired): an ordinary message
        if not await self._claim(f"slack-hr-reply:{channel}:{event.get('ts')}"):
            return True
        reply = str(event.get("text") or "")
        if bot_user_id:
            reply = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", reply)
        reply = neutralise(reply).strip()  # HR's mrkdwn (links kept), with no one pinged by the relay
        if not reply:
            return True
        text = to_mrkdwn(self.conversation.say("hr_reply", found.lang, reply="\x01")).replace("\x01", reply)
        user = str(found.route.get("user") or "")
        sent = await self._call(
            "chat.postMessage", channel=user, text=text, blocks=[section(c) for c in chunks(text)]
        )
        if sent is not None:
            log.info("relayed HR's reply in an escalation thread to the asker")
        return True

    async def _on_pick(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        value = self._action_value(body)
        entry_id, lang = value.get("e"), value.get("l") or self.settings.default_lang
        if not entry_id or not self._entry_ok(entry_id):
            return
        reply = await self.conversation.answer_entry(entry_id, lang, question=value.get("q", ""))
        container = body.get("container") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id"))
        replace = bool(PICK.match(str(action.get("action_id"))))
        # A related button under a message in a channel (a daily tip, an answer in a thread) answers only
        # whoever clicked; in their DM with the bot, a new message is right.
        ephemeral = (
            bool(container.get("is_ephemeral"))
            or not body.get("message")
            or (not replace and not channel.startswith("D"))
        )
        if ephemeral or replace:
            # "Did you mean" is resolved: the answer takes the prompt's place (public or private);
            # a private related answer comes as a new ephemeral message.
            message = render(reply, ask_hr=self.hr_channel is not None)
            body_out: dict[str, Any] = {
                "text": message.text,
                "blocks": message.blocks,
                "replace_original": replace,
            }
            if ephemeral:
                body_out["response_type"] = "ephemeral"
            if await self._respond(body.get("response_url"), body_out):
                return
            if ephemeral:
                await self._post_ephemeral(body, message)
                return
        original = body.get("message") or {}
        thread = original.get("thread_ts") or (None if channel.startswith("D") else original.get("ts"))
        await self._post(channel, reply, thread)


# ------------------------------------------------------------------------------------------- mounting


SLACK = web.AppKey("policybot_slack", SlackBot)


def mount(app: web.Application, ctx: Any) -> SlackBot:
    """Add `POST /slack/events`; dedupe through the store's `claim_event` when it has one."""
    claims: Claims = ctx.store if hasattr(ctx.store, "claim_event") else EventClaims()
    bot = SlackBot(ctx.settings, ctx.conversation, claims, ctx)
    if bot.hr_channel and getattr(ctx, "reloader", None) is not None:
        ctx.reloader.on_result(bot.notify_hr)  # a rejected knowledge-base edit is reported to HR
    if bot.hr_channel and getattr(ctx, "review", None) is not None:
        ctx.review.on_notice(bot.post_to_hr)  # the weekly list of answers due for review
    if hasattr(ctx.store, "save_escalation"):
        bot.routes = ctx.store
    app[SLACK] = bot
    app.on_startup.append(bot.open)
    app.on_cleanup.append(bot.close)
    app.router.add_post("/slack/events", bot.handle)
    return bot
