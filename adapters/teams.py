"""Microsoft Teams: the same bot at `POST /api/messages`, with Adaptive Cards, installs and proactive sends.

Built on botbuilder-python 4.17 (`botbuilder-core`, `botbuilder-integration-aiohttp`). Microsoft archived
botbuilder-python at the end of 2025; its successor is the Microsoft 365 Agents SDK
(`microsoft-agents-hosting-*`). Every botbuilder import lives in adapters/teams*.py (this module,
adapters/teams_delivery.py, which holds the SDK's CloudAdapter wiring and the proactive sends, and
adapters/teams_auth.py, the identity endpoints and token checks), so a move touches only those.

Known traps of 4.17.1 this module steps around:
- an `invoke` answered with a body is serialized twice and comes back as a 500, so cards use
  `Action.Submit` (delivered as a `message` activity whose `value` is the action's `data`), never
  `Action.Execute`; other invokes get an empty 200;
- `conversation.tenantId` is dropped when an activity is parsed (the model expects `tenantID`), so the
  tenant is read from `channelData.tenant.id` and put back on stored conversation references;
- a conversation reference keeps the id of the activity it was taken from; a proactive send through it
  would be posted as a reply to that (by then meaningless) id, so the id is cleared first (here when a
  reference is stored, and again in adapters/teams_delivery.py when it is sent through);
- outgoing Bot Connector calls go through msrest/`requests` (in a thread), not aiohttp: proxies come from
  the environment, so keep loopback in NO_PROXY when the connector is local (the Emulator, tests).

The raw JSON body is read for mentions and `channelData` rather than the SDK's models, so parsing quirks
cannot hide them. This module only translates: an activity becomes one of the router's events
(bot/platform.py) and bot/router.py runs the workflow; the router's sends are rendered in
adapters/teams_platform.py, the cards in adapters/teams_cards.py (plain dicts), and the app package to
upload is written by adapters/teams_package.py.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.auth import AuthenticateRequestResult

from adapters.guards import Rejection, json_body
from adapters.teams_auth import Refusal, TokenCheck
from adapters.teams_cards import MAX_DATA_QUESTION
from adapters.teams_delivery import TeamsDeliverer
from adapters.teams_platform import TeamsPlatform, TeamsTurn, reference_of
from bot.platform import AskHr, Feedback, HrReply, Installed, Pick, Question, Uninstalled
from bot.privacy import SOMEONE
from bot.router import Router

log = logging.getLogger(__name__)

_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_MENTION = re.compile(r"<at(?:\s[^>]*)?>.*?</at>", re.IGNORECASE | re.DOTALL)
_BEARER = re.compile(r"Bearer [!-~]+\Z")
_CHAT_TYPES_NEEDING_MENTION = ("channel", "groupChat")
_LANGS = ("en", "nb")

# ------------------------------------------------------------------------------------------------------
# Reading activities


def lang_from_locale(locale: str | None) -> str | None:
    """Teams' `locale` ("nb-NO", "en-US") as a language hint; Norwegian variants all mean "nb"."""
    if not locale:
        return None
    prefix = locale.split("-")[0].lower()
    if prefix in ("nb", "no", "nn"):
        return "nb"
    if prefix == "en":
        return "en"
    return None


def tenant_of(body: Mapping[str, Any]) -> str | None:
    channel_data = body.get("channelData")
    if isinstance(channel_data, dict):
        tenant = channel_data.get("tenant")
        tenant_id = tenant.get("id") if isinstance(tenant, dict) else None
        if isinstance(tenant_id, str):
            return tenant_id
    return None


def question_text(
    body: Mapping[str, Any], bot_id: str | None, *, keep_people: bool = False
) -> tuple[str, bool]:
    """The user's text without the bot's @mention, and whether the bot was mentioned.

    Every other mention (`<at>Per Olsen</at>`) becomes bot/privacy.py's placeholder as the markup is
    resolved (once the tags are gone it would be only a name), unless `keep_people` (HR's replies, which
    are relayed and never stored).
    """
    raw = body.get("text")
    text = raw if isinstance(raw, str) else ""
    mentioned = False
    for entity in body.get("entities") or ():
        if not isinstance(entity, dict) or str(entity.get("type", "")).lower() != "mention":
            continue
        who = entity.get("mentioned")
        if not isinstance(who, dict) or not bot_id or who.get("id") != bot_id:
            continue
        mentioned = True
        mention_text = entity.get("text")
        if not isinstance(mention_text, str) or not mention_text:
            mention_text = f"<at>{who.get('name', '')}</at>"
        text = text.replace(mention_text, " ")
    if not keep_people:
        text = _MENTION.sub(SOMEONE, text)
    text = html.unescape(_TAG.sub(" ", text)).replace("\xa0", " ")
    return " ".join(text.split()), mentioned


# ------------------------------------------------------------------------------------------------------
# The bot


class TeamsBot:
    """Turns Teams activities into the router's events; `platform` renders and sends what it decides."""

    def __init__(
        self, router: Router, platform: TeamsPlatform, adapter: CloudAdapter, *, anonymous: bool = False
    ) -> None:
        self.router = router
        self.anonymous = anonymous  # development mode without an app id: no token to check
        self.platform = platform
        self.adapter = adapter
        self.default_lang = router.default_lang
        self.adapter.on_turn_error = self._on_turn_error
        self.token_check = TokenCheck(adapter.bot_framework_authentication)  # 401/503, see teams_auth.py

    @property
    def deliverer(self) -> TeamsDeliverer:
        return self.platform.deliverer

    async def _on_turn_error(self, turn_context: TurnContext, error: Exception) -> None:
        log.error(
            "Teams turn failed for a %s activity: %r", turn_context.activity.type, error, exc_info=error
        )

    # -- HTTP ------------------------------------------------------------------------------------------

    async def handle_http(self, request: web.Request) -> web.Response:
        admitted = await self._admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        body, activity, authenticated = admitted

        async def logic(turn_context: TurnContext) -> None:
            await self.on_turn(TeamsTurn(turn_context, tenant_of(body)), body)

        try:
            invoke_response = await self.adapter.process_activity(authenticated, activity, logic)
        except Exception:
            log.exception("Teams activity could not be processed")
            return _problem(500, "the activity could not be processed")
        if isinstance(invoke_response, InvokeResponse):
            # Serialized once, here (the SDK's own path serializes twice and answers 500).
            if invoke_response.body is None:
                return web.Response(status=invoke_response.status or 200)
            return web.json_response(invoke_response.body, status=invoke_response.status or 200)
        return web.Response(status=200)

    async def _admit(
        self, request: web.Request
    ) -> tuple[dict[str, Any], Activity, AuthenticateRequestResult] | web.Response:
        """The activity, authenticated, or the 4xx to answer instead.

        botbuilder checks a token against the activity it came with (its serviceUrl and channel), so the
        body is read before the token is checked, bounded (`_parse`); a request without a bearer token
        is refused before that (unless the endpoint is anonymous). The fields this module reads from the
        raw body are type-checked where they are read (`question_text`, `tenant_of`, `_on_action`).
        """
        authorization = request.headers.get("Authorization", "")
        if not self.anonymous and not _BEARER.match(authorization):
            log.info("Teams request refused (401): no bearer token")
            return _problem(401, "unauthorized")
        parsed = await _parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        body, activity = parsed
        authenticated = await self.token_check.check(activity, authorization or None)
        if isinstance(authenticated, Refusal):
            return _problem(authenticated.status, authenticated.message)
        return body, activity, authenticated

    # -- Turns -----------------------------------------------------------------------------------------

    async def on_turn(self, turn: TeamsTurn, body: dict[str, Any]) -> None:
        activity = turn.context.activity
        kind = activity.type
        if kind == ActivityTypes.message:
            value = body.get("value")
            card_action = isinstance(value, dict) and "policybot" in value
            key = f"teams:{activity.conversation.id}:{activity.id}" if activity.id else None
            question = None if card_action else self._question(turn, body, key)
            # A question is kept in progress with its claim until it is answered (bot/pending.py); a
            # reply in an HR thread may be HR's answer to relay instead: not kept.
            held = None if question is None or self._in_hr_thread(turn) else question
            if key and not await self.router.first_delivery(key, platform=self.platform, question=held):
                return  # Teams redelivers a message it thinks was answered too slowly
            if isinstance(value, dict) and card_action:
                await self._on_action(turn, value)
            else:
                await self._on_message(turn, body, question)
        elif kind == ActivityTypes.conversation_update:
            await self._on_conversation_update(turn)
        elif kind == ActivityTypes.installation_update:
            action = str(body.get("action", ""))
            if action.startswith("add"):
                await self._installed(turn, greet=False)
            elif action.startswith("remove"):
                await self.router.uninstalled(self.platform, Uninstalled(activity.conversation.id))
        elif kind == ActivityTypes.invoke:
            # Quiet 200 without a body: our cards never use Action.Execute (see the module docstring).
            await turn.context.send_activity(
                Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=200))
            )
        else:
            log.debug("ignoring a Teams %s activity", kind)

    def _question(self, turn: TeamsTurn, body: dict[str, Any], key: str | None) -> Question[TeamsTurn] | None:
        """The question a message asks; None where the bot was not spoken to (a channel, a group chat)."""
        activity = turn.context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        text, mentioned = question_text(body, bot_id)
        if activity.conversation.conversation_type in _CHAT_TYPES_NEEDING_MENTION and not mentioned:
            return None  # channel and group chat: only when spoken to
        # Admin commands (reload, report, tip now, why …) for an admin, by AAD object id. Empty text
        # (attachments only, a bare mention) gets the core's "empty" help.
        who = activity.from_property.aad_object_id if activity.from_property else None
        lang = lang_from_locale(activity.locale)
        return Question(turn, text, who=who, lang_hint=lang, admin=True, delivery=key)

    def _in_hr_thread(self, turn: TeamsTurn) -> bool:
        hr_id = self.platform.hr_id
        return bool(hr_id) and turn.context.activity.conversation.id.startswith(f"{hr_id};messageid=")

    async def _on_message(
        self, turn: TeamsTurn, body: dict[str, Any], question: Question[TeamsTurn] | None
    ) -> None:
        activity = turn.context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        if await self._relay_hr_reply(turn, body, bot_id):
            return
        if question is not None:
            await self.router.question(self.platform, question)

    async def _relay_hr_reply(self, turn: TeamsTurn, body: dict[str, Any], bot_id: str | None) -> bool:
        """A message in a thread of the HR conversation may be HR answering "Ask HR": the router relays it.

        Teams delivers channel messages to a bot only when it is @mentioned, so HR mentions policybot
        in the reply (the HR note says so); the mention is removed before the text is passed on.
        """
        thread_id = turn.context.activity.conversation.id
        if not self._in_hr_thread(turn):
            return False
        sender = turn.context.activity.from_property.id if turn.context.activity.from_property else None
        text, _ = question_text(body, bot_id, keep_people=True)
        reply = HrReply(thread_id, text, ignored=not sender or sender == bot_id)
        return await self.router.hr_reply(self.platform, reply)

    async def _on_action(self, turn: TeamsTurn, value: dict[str, Any]) -> None:
        """A button of one of our cards was pressed (Action.Submit)."""
        action = value.get("policybot")
        given = value.get("lang")
        lang = given if isinstance(given, str) and given in _LANGS else self.default_lang
        entry = value.get("entry") if isinstance(value.get("entry"), str) else None
        question = str(value.get("question") or "")[:MAX_DATA_QUESTION]
        helpful = value.get("helpful")
        if action == "feedback" and entry and isinstance(helpful, bool):
            await self.router.feedback(self.platform, Feedback(turn, entry, helpful, lang))
        elif action == "pick" and entry:
            await self.router.pick(self.platform, Pick(turn, entry, lang, question))
        elif action == "ask_hr":
            await self.router.ask_hr(self.platform, AskHr(turn, question, lang))
        else:
            log.info("ignoring an unknown Teams card action %r", action)
            await self.router.button_not_understood(self.platform, turn, lang)

    async def _on_conversation_update(self, turn: TeamsTurn) -> None:
        activity = turn.context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        if any(member.id == bot_id for member in activity.members_removed or ()):
            await self.router.uninstalled(self.platform, Uninstalled(activity.conversation.id))
        elif any(member.id == bot_id for member in activity.members_added or ()):
            personal = activity.conversation.conversation_type in (None, "personal")
            await self._installed(turn, greet=personal)

    async def _installed(self, turn: TeamsTurn, *, greet: bool) -> None:
        activity = turn.context.activity
        reference = reference_of(activity, turn.tenant).serialize()
        lang = lang_from_locale(activity.locale) or self.default_lang
        event = Installed(turn, activity.conversation.id, reference, lang, greet=greet)
        await self.router.installed(self.platform, event)


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _parse(request: web.Request) -> tuple[dict[str, Any], Activity] | web.Response:
    """The raw JSON and the parsed activity, or a 4xx naming what is wrong (never a stack trace).

    Read with the bounds of adapters/guards.py: UTF-8, at most MAX_DEPTH levels, an object.
    """
    if request.content_type != "application/json":
        return _problem(415, "send the activity as application/json")
    body = await json_body(request)
    if isinstance(body, Rejection):
        return body.response()
    if not isinstance(body.get("type"), str):
        return _problem(400, "the body is not a Bot Framework activity (it needs a 'type')")
    try:
        activity = Activity().deserialize(body)
    except Exception:  # msrest raises several kinds for malformed fields
        return _problem(400, "the activity could not be parsed")
    if not activity.service_url or activity.conversation is None or not activity.conversation.id:
        return _problem(400, "the activity needs a serviceUrl and a conversation id")
    return body, activity


TEAMS_BOT = web.AppKey("policybot_teams_bot", TeamsBot)


def mount(app: web.Application, bot: TeamsBot) -> None:
    """Add `POST /api/messages`."""
    app[TEAMS_BOT] = bot
    app.router.add_post("/api/messages", bot.handle_http)


def deliverer(app: web.Application) -> TeamsDeliverer | None:
    """The Teams tips Deliverer of a server app, or None when Teams is not mounted."""
    bot = app.get(TEAMS_BOT)
    return bot.deliverer if bot is not None else None


__all__ = [
    "TeamsBot",
    "deliverer",
    "lang_from_locale",
    "mount",
]
