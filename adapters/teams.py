"""Microsoft Teams: the same bot at `POST /api/messages`, with Adaptive Cards, installs and proactive sends.

Built on botbuilder-python 4.17 (`botbuilder-core`, `botbuilder-integration-aiohttp`). Microsoft archived
botbuilder-python at the end of 2025; its successor is the Microsoft 365 Agents SDK
(`microsoft-agents-hosting-*`). Every botbuilder import lives in adapters/teams*.py (this module and
adapters/teams_delivery.py, which holds the SDK's CloudAdapter wiring and the proactive sends), so a move
touches only those.

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
cannot hide them. The cards themselves are built in adapters/teams_cards.py, as plain dicts; the app
package to upload is written by adapters/teams_package.py.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import ClientError, web
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes, ConversationAccount, ConversationReference
from msrest.exceptions import HttpOperationError

from adapters.teams_cards import MAX_DATA_QUESTION, render_card
from adapters.teams_delivery import PLATFORM, TeamsDeliverer, card_activity, make_adapter
from bot.admin import Admin
from bot.config import Settings
from bot.conversation import Conversation, Message, Reply
from bot.errors import DeliveryError, PolicybotError
from bot.reload import ReloadResult

log = logging.getLogger(__name__)

_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_CHAT_TYPES_NEEDING_MENTION = ("channel", "groupChat")

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
        if isinstance(tenant, dict) and isinstance(tenant.get("id"), str):
            return tenant["id"]
    return None


def reference_of(activity: Activity, tenant: str | None) -> ConversationReference:
    """The reference to post into this conversation later: no activity id, no user, the tenant kept."""
    reference = TurnContext.get_conversation_reference(activity)
    reference.activity_id = None
    reference.user = None  # a tip goes to the conversation, not to the person who installed the bot
    if tenant and reference.conversation is not None:
        reference.conversation.tenant_id = tenant
    return reference


def question_text(body: Mapping[str, Any], bot_id: str | None) -> tuple[str, bool]:
    """The user's text without the bot's @mention, and whether the bot was mentioned."""
    text = body.get("text") if isinstance(body.get("text"), str) else ""
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
    text = html.unescape(_TAG.sub(" ", text)).replace("\xa0", " ")
    return " ".join(text.split()), mentioned


# ------------------------------------------------------------------------------------------------------
# The bot


class TeamsBot:
    """Turns Teams activities into core calls, and core replies into Adaptive Cards."""

    def __init__(self, ctx: Any, adapter: CloudAdapter) -> None:
        self.ctx = ctx
        self.adapter = adapter
        self.deliverer = TeamsDeliverer(
            ctx.settings, ctx.store, conversation=ctx.conversation, adapter=adapter
        )
        self.adapter.on_turn_error = self._on_turn_error

    @property
    def conversation(self) -> Conversation:
        conversation: Conversation = self.ctx.conversation
        return conversation

    @property
    def settings(self) -> Settings:
        settings: Settings = self.ctx.settings
        return settings

    async def _on_turn_error(self, turn_context: TurnContext, error: Exception) -> None:
        log.error(
            "Teams turn failed for a %s activity: %r", turn_context.activity.type, error, exc_info=error
        )

    # -- HTTP ------------------------------------------------------------------------------------------

    async def handle_http(self, request: web.Request) -> web.Response:
        parsed = await _parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        body, activity = parsed
        authenticated = await self._authenticate(activity, request.headers.get("Authorization", ""))
        if isinstance(authenticated, web.Response):
            return authenticated

        async def logic(turn_context: TurnContext) -> None:
            await self.on_turn(turn_context, body)

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

    async def _authenticate(self, activity: Activity, auth_header: str) -> Any:
        """The SDK's AuthenticateRequestResult, or the 401/503 response to give instead."""
        try:
            return await self.adapter.bot_framework_authentication.authenticate_request(activity, auth_header)
        except PermissionError:
            return _problem(401, "unauthorized")
        except (ClientError, OSError) as exc:  # OpenID metadata could not be fetched
            log.warning("Teams token validation could not reach the identity service: %r", exc)
            return _problem(503, "token validation is unavailable; try again")
        except Exception as exc:  # a token the JWT library rejects
            log.info("Teams request with an invalid token: %s", type(exc).__name__)
            return _problem(401, "unauthorized")

    # -- Turns -----------------------------------------------------------------------------------------

    async def on_turn(self, turn_context: TurnContext, body: dict[str, Any]) -> None:
        activity = turn_context.activity
        kind = activity.type
        if kind == ActivityTypes.message:
            if not await self._first_delivery(activity):
                return
            if isinstance(body.get("value"), dict) and "policybot" in body["value"]:
                await self._on_action(turn_context, body["value"], body)
            else:
                await self._on_message(turn_context, body)
        elif kind == ActivityTypes.conversation_update:
            await self._on_conversation_update(turn_context, body)
        elif kind == ActivityTypes.installation_update:
            action = str(body.get("action", ""))
            if action.startswith("add"):
                await self._remember(turn_context, body)
            elif action.startswith("remove"):
                await self._forget(activity.conversation.id)
        elif kind == ActivityTypes.invoke:
            # Quiet 200 without a body: our cards never use Action.Execute (see the module docstring).
            await turn_context.send_activity(
                Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=200))
            )
        else:
            log.debug("ignoring a Teams %s activity", kind)

    async def _first_delivery(self, activity: Activity) -> bool:
        """False for a redelivery of a message already handled (Teams retries on slow answers)."""
        store = self.ctx.store
        if store is None or not activity.id:
            return True
        try:
            return bool(await store.claim_event(f"teams:{activity.conversation.id}:{activity.id}"))
        except PolicybotError as exc:
            log.warning("could not check Teams redelivery, answering anyway: %s", exc)
            return True

    def _hint(self, activity: Activity) -> str | None:
        return lang_from_locale(activity.locale)

    async def _on_message(self, turn_context: TurnContext, body: dict[str, Any]) -> None:
        if await self._relay_hr_reply(turn_context, body):
            return
        activity = turn_context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        text, mentioned = question_text(body, bot_id)
        conversation_type = activity.conversation.conversation_type
        if conversation_type in _CHAT_TYPES_NEEDING_MENTION and not mentioned:
            return  # channel and group chat: only when spoken to
        if await self._admin_command(turn_context, text):
            return
        # Empty text (attachments only, a bare mention) gets the core's "empty" help.
        reply = await self.conversation.handle(Message(text=text, lang_hint=self._hint(activity)))
        await turn_context.send_activity(self._reply_activity(reply))

    async def _admin_command(self, turn_context: TurnContext, text: str) -> bool:
        """Admin commands (reload, report, tip now, why …): run for an admin (AAD object id), else refuse."""
        activity = turn_context.activity
        who = activity.from_property.aad_object_id if activity.from_property else None
        admin = Admin(
            self.settings.admins,
            self.conversation,
            reloader=getattr(self.ctx, "reloader", None),
            tips=getattr(self.ctx, "tips", None),
            store=self.ctx.store,
        )
        answer = await admin.run(text, who, self._hint(activity) or self.settings.default_lang)
        if answer is None:
            return False
        await turn_context.send_activity(self._markdown(answer))
        return True

    async def notify_hr(self, result: ReloadResult) -> None:
        """Tell the Teams HR conversation that an edit was rejected (and what to fix), or is fixed."""
        reloader = getattr(self.ctx, "reloader", None)
        if reloader is not None:
            await self.post_to_hr(lambda lang: reloader.message(result, lang))

    async def post_to_hr(self, text_in: Callable[[str], str]) -> None:
        """Post the core's markdown to the Teams HR conversation, in the language recorded for it."""
        hr_id = self.settings.hr_teams_conversation
        if not hr_id:
            return
        found = await self.deliverer.hr_reference(hr_id)
        if found is None:  # the log says why
            log.warning("the Teams HR conversation is not told about the knowledge base; see the log above")
            return
        reference, lang = found
        try:
            await self.deliverer.send(reference, self._markdown(text_in(lang)))
        except DeliveryError as exc:
            log.warning("could not tell the Teams HR conversation about the knowledge base: %s", exc)

    async def _on_action(
        self, turn_context: TurnContext, value: dict[str, Any], body: dict[str, Any]
    ) -> None:
        """A button of one of our cards was pressed (Action.Submit)."""
        action = value.get("policybot")
        lang = value.get("lang") if value.get("lang") in ("en", "nb") else self.settings.default_lang
        entry = value.get("entry") if isinstance(value.get("entry"), str) else None
        question = str(value.get("question") or "")[:MAX_DATA_QUESTION]
        kb = self.conversation.kb
        if action == "feedback" and entry in kb.entries and isinstance(value.get("helpful"), bool):
            thanks = await self.conversation.feedback(entry, value["helpful"], lang)
            answer = await self.conversation.answer_entry(entry, lang)  # no question: records nothing
            card = render_card(answer, hr_enabled=False, say=self.conversation.say, thanks=thanks)
            await self._replace_card(turn_context, card, thanks)
        elif action == "pick" and entry in kb.entries:
            reply = await self.conversation.answer_entry(entry, lang, question=question)
            await turn_context.send_activity(self._reply_activity(reply))
        elif action == "ask_hr" and question:
            await self._ask_hr(turn_context, question, lang, body)
        else:
            log.info("ignoring an unknown Teams card action %r", action)
            await turn_context.send_activity(self._markdown(self.conversation.say("help", lang)))

    async def _replace_card(self, turn_context: TurnContext, card: dict[str, Any], text: str) -> None:
        """Swap the card whose button was pressed (no second vote); without its id, just say `text`."""
        card_id = turn_context.activity.reply_to_id
        if card_id:
            update = card_activity(card)
            update.id = card_id
            try:
                await turn_context.update_activity(update)
                return
            except HttpOperationError as exc:
                log.info("could not update the Teams card (%s); sending the thanks instead", exc)
        await turn_context.send_activity(self._markdown(text))

    async def _ask_hr(
        self, turn_context: TurnContext, question: str, lang: str, body: dict[str, Any]
    ) -> None:
        hr_id = self.settings.hr_teams_conversation
        if not hr_id:
            await turn_context.send_activity(self._markdown(self.conversation.say("escalation_failed", lang)))
            return
        activity = turn_context.activity
        tenant = tenant_of(body)
        found = await self.deliverer.hr_reference_for(hr_id, tenant)
        if found is not None:
            reference, hr_lang = found
        else:  # no team of the asker's tenant to address it through: this activity's service and tenant
            reference = reference_of(activity, tenant)
            reference.conversation = ConversationAccount(id=hr_id, tenant_id=tenant)
            hr_lang = self.settings.default_lang
        user = (activity.from_property.name if activity.from_property else None) or "?"
        text = self.conversation.say("escalation_to_hr", hr_lang, question=question, user=user)
        # Plain text: the asker's words reach HR inert (no markdown links or formatting of theirs).
        message = Activity(type=ActivityTypes.message, text=text, text_format="plain")
        try:
            posted = await self.deliverer.send(reference, message)
        except DeliveryError as exc:
            log.warning("Ask HR could not be delivered to the HR conversation: %s", exc)
            await turn_context.send_activity(self._markdown(self.conversation.say("escalation_failed", lang)))
            return
        if posted and reference.conversation is not None:
            thread_id = f"{reference.conversation.id};messageid={posted}"
            await self._remember_escalation(thread_id, reference_of(activity, tenant), lang)
        await turn_context.send_activity(self._markdown(self.conversation.say("escalation_sent", lang)))

    # -- HR's replies to "Ask HR" ------------------------------------------------------------------------

    async def _remember_escalation(self, thread_id: str, reference: ConversationReference, lang: str) -> None:
        """Keep how to reach the asker (their conversation's reference, no user) for the HR thread."""
        store = self.ctx.store
        if store is None or not hasattr(store, "save_escalation"):
            return
        try:
            await store.save_escalation(PLATFORM, thread_id, reference.serialize(), lang)
        except PolicybotError as exc:
            log.warning("HR's reply to this escalation cannot be relayed: %s", exc)

    async def _relay_hr_reply(self, turn_context: TurnContext, body: dict[str, Any]) -> bool:
        """Relay HR's reply in an "Ask HR" thread to the asker's conversation; True if it was one.

        Teams delivers channel messages to a bot only when it is @mentioned, so HR mentions policybot
        in the reply (the HR note says so); the mention is removed before the text is passed on.
        """
        activity = turn_context.activity
        hr_id, store = self.settings.hr_teams_conversation, self.ctx.store
        thread_id = activity.conversation.id
        if not hr_id or store is None or not hasattr(store, "escalation"):
            return False
        if not thread_id.startswith(f"{hr_id};messageid="):
            return False
        sender = activity.from_property.id if activity.from_property else None
        bot_id = activity.recipient.id if activity.recipient else None
        if not sender or sender == bot_id:
            return True  # our own message: never relayed
        try:
            found = await store.escalation(PLATFORM, thread_id)
        except PolicybotError as exc:
            log.error("could not look up the escalation for an HR reply: %s", exc)
            return True
        if found is None:
            return False  # not an escalation thread (or expired): an ordinary message
        text, _ = question_text(body, bot_id)
        if not text:
            return True
        message = self._markdown(self.conversation.say("hr_reply", found.lang, reply=text))
        try:
            await self.deliverer.send(ConversationReference.deserialize(found.route), message)
        except DeliveryError as exc:
            log.warning("HR's reply could not be relayed to the asker: %s", exc)
            return True
        log.info("relayed HR's reply in an escalation thread to the asker")
        return True

    async def _on_conversation_update(self, turn_context: TurnContext, body: dict[str, Any]) -> None:
        activity = turn_context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        added = any(member.id == bot_id for member in activity.members_added or ())
        removed = any(member.id == bot_id for member in activity.members_removed or ())
        if removed:
            await self._forget(activity.conversation.id)
        elif added:
            lang = await self._remember(turn_context, body)
            if activity.conversation.conversation_type in (None, "personal"):
                await turn_context.send_activity(self._markdown(self.conversation.say("greeting", lang)))

    async def _remember(self, turn_context: TurnContext, body: dict[str, Any]) -> str:
        activity = turn_context.activity
        lang = self._hint(activity) or self.settings.default_lang
        if self.ctx.store is None:
            log.warning("no store configured: the Teams conversation will not receive tips")
            return lang
        reference = reference_of(activity, tenant_of(body))
        await self.ctx.store.save_reference(PLATFORM, activity.conversation.id, reference.serialize(), lang)
        log.info("Teams conversation stored for tips (%s)", activity.conversation.conversation_type)
        return lang

    async def _forget(self, conversation_id: str) -> None:
        if self.ctx.store is not None:
            await self.ctx.store.remove_reference(PLATFORM, conversation_id)
            log.info("Teams conversation removed: the bot was uninstalled")

    # -- Rendering -------------------------------------------------------------------------------------

    def _reply_activity(self, reply: Reply) -> Activity:
        card = render_card(
            reply, hr_enabled=bool(self.settings.hr_teams_conversation), say=self.conversation.say
        )
        return card_activity(card)

    @staticmethod
    def _markdown(text: str) -> Activity:
        return Activity(type=ActivityTypes.message, text=text, text_format="markdown")


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _parse(request: web.Request) -> tuple[dict[str, Any], Activity] | web.Response:
    """The raw JSON and the parsed activity, or a 4xx naming what is wrong (never a stack trace)."""
    if request.content_type != "application/json":
        return _problem(415, "send the activity as application/json")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return _problem(400, "the body is not valid JSON")
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        return _problem(400, "the body is not a Bot Framework activity (it needs a 'type')")
    try:
        activity = Activity().deserialize(body)
    except Exception:  # msrest raises several kinds for malformed fields
        return _problem(400, "the activity could not be parsed")
    if not activity.service_url or activity.conversation is None or not activity.conversation.id:
        return _problem(400, "the activity needs a serviceUrl and a conversation id")
    return body, activity


TEAMS_BOT = web.AppKey("policybot_teams_bot", TeamsBot)


def mount(app: web.Application, ctx: Any) -> bool:
    """Add `POST /api/messages` when Teams is configured (or anonymously in development); say why not."""
    settings: Settings = ctx.settings
    if settings.teams is None and not settings.development:
        log.info(
            "Teams endpoint not mounted: MicrosoftAppId is not set "
            "(anonymous local mode needs POLICYBOT_ENV=development)"
        )
        return False
    if settings.teams is None:
        log.warning(
            "Teams endpoint /api/messages in anonymous local mode (POLICYBOT_ENV=development, no "
            "MicrosoftAppId): requests are NOT authenticated; never expose this to the internet"
        )
    bot = TeamsBot(ctx, make_adapter(settings))
    app[TEAMS_BOT] = bot
    if settings.hr_teams_conversation and getattr(ctx, "reloader", None) is not None:
        ctx.reloader.on_result(bot.notify_hr)  # a rejected knowledge-base edit is reported to HR
    if settings.hr_teams_conversation and getattr(ctx, "review", None) is not None:
        ctx.review.on_notice(bot.post_to_hr)  # the weekly list of answers due for review
    app.router.add_post("/api/messages", bot.handle_http)
    return True


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
