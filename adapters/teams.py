"""Microsoft Teams: the same bot at `POST /api/messages`, with Adaptive Cards, installs and proactive sends.

Built on botbuilder-python 4.17 (`botbuilder-core`, `botbuilder-integration-aiohttp`). Microsoft archived
botbuilder-python at the end of 2025; its successor is the Microsoft 365 Agents SDK
(`microsoft-agents-hosting-*`). Every botbuilder import lives in this module, so a move touches only it.

Known traps of 4.17.1 this module steps around:
- an `invoke` answered with a body is serialized twice and comes back as a 500, so cards use
  `Action.Submit` (delivered as a `message` activity whose `value` is the action's `data`), never
  `Action.Execute`; other invokes get an empty 200;
- `conversation.tenantId` is dropped when an activity is parsed (the model expects `tenantID`), so the
  tenant is read from `channelData.tenant.id` and put back on stored conversation references;
- a conversation reference keeps the id of the activity it was taken from; a proactive send through it
  would be posted as a reply to that (by then meaningless) id, so the id is cleared first;
- outgoing Bot Connector calls go through msrest/`requests` (in a thread), not aiohttp: proxies come from
  the environment, so keep loopback in NO_PROXY when the connector is local (the Emulator, tests).

The raw JSON body is read for mentions and `channelData` rather than the SDK's models, so parsing quirks
cannot hide them. The cards themselves are built in adapters/teams_cards.py, as plain dicts.
"""

from __future__ import annotations

import html
import json
import logging
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from aiohttp import ClientError, web
from botbuilder.core import CardFactory, InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes, ConversationAccount, ConversationReference
from msrest.exceptions import ClientRequestError, HttpOperationError

from adapters.teams_cards import MAX_DATA_QUESTION, render_card
from bot.admin import Admin
from bot.config import Settings
from bot.conversation import Conversation, Message, Reply
from bot.errors import ConfigError, DeliveryError, PolicybotError
from bot.reload import ReloadResult

log = logging.getLogger(__name__)

PLATFORM = "teams"
ASSETS = Path(__file__).parent / "assets"
MANIFEST_TEMPLATE = Path(__file__).parent / "teams_manifest.json"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_VALID_DOMAINS = 16  # the app manifest schema's limit on validDomains
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_CHAT_TYPES_NEEDING_MENTION = ("channel", "groupChat")

# ------------------------------------------------------------------------------------------------------
# SDK wiring


@dataclass(frozen=True)
class _SdkConfig:
    """The configuration object botbuilder reads (attribute names are the SDK's)."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str | None


def make_adapter(settings: Settings) -> CloudAdapter:
    """A CloudAdapter that validates every token when an app id is set, and is anonymous otherwise."""
    teams = settings.teams
    config = _SdkConfig(
        APP_ID=teams.app_id if teams else "",
        APP_PASSWORD=teams.app_password if teams else "",
        APP_TYPE=teams.app_type if teams else "MultiTenant",
        APP_TENANTID=teams.tenant_id if teams else None,
    )
    return CloudAdapter(ConfigurationBotFrameworkAuthentication(config))


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


def _tenant_of_reference(reference: ConversationReference) -> str | None:
    return reference.conversation.tenant_id if reference.conversation else None


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


def card_activity(card: dict[str, Any]) -> Activity:
    """A message carrying one Adaptive Card (from adapters/teams_cards.py)."""
    return Activity(type=ActivityTypes.message, attachments=[CardFactory.adaptive_card(card)])


# ------------------------------------------------------------------------------------------------------
# Proactive sends (tips, Ask HR)


def _delivery_error(conversation_id: str, exc: Exception) -> DeliveryError:
    """403/404 mean the bot is gone from the conversation (do not retry); 429/5xx/network may pass."""
    if isinstance(exc, HttpOperationError):
        status = getattr(exc.response, "status_code", None) or 0
        headers = getattr(exc.response, "headers", None) or {}
        retry_after = headers.get("Retry-After")
        why = "the bot was removed or the conversation is gone" if status in (403, 404) else "refused"
        return DeliveryError(
            f"Teams {why} (HTTP {status}) for {conversation_id}",
            retryable=status == 429 or status >= 500,
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    cause = getattr(exc, "inner_exception", None) or exc.__cause__
    if isinstance(exc, ClientRequestError) and isinstance(cause, requests.ConnectionError):
        # Refused, DNS, or a connect timeout: nothing reached Teams, so trying later cannot duplicate.
        return DeliveryError(f"Teams could not be reached for {conversation_id}: {cause}", retryable=True)
    if isinstance(exc, ClientRequestError):
        # E.g. a read timeout: Teams may have posted it, and a retry could post it twice.
        return DeliveryError(f"Teams send to {conversation_id} may have failed (not retried): {exc}")
    return DeliveryError(f"Teams send to {conversation_id} failed: {exc!r}")


class TeamsDeliverer:
    """The tips Deliverer for Teams: posts a reply card into a conversation through its stored reference."""

    platform = PLATFORM

    def __init__(
        self,
        settings: Settings,
        store: Any,
        *,
        conversation: Conversation | None = None,
        adapter: CloudAdapter | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._say = conversation.say if conversation is not None else None
        self._adapter = adapter or make_adapter(settings)
        self._app_id = settings.teams.app_id if settings.teams else ""

    async def reference(self, conversation_id: str) -> tuple[ConversationReference, str] | None:
        """The stored reference and language of a conversation the bot is installed in, if any."""
        if self._store is None:
            return None
        for stored in await self._store.references(PLATFORM):
            if stored.conversation_id == conversation_id:
                return ConversationReference.deserialize(stored.reference), stored.lang
        return None

    async def hr_reference(self, hr_id: str) -> tuple[ConversationReference, str] | None:
        """How to post into the HR conversation `hr_id` with no asker to go by (a note about the knowledge
        base): its own stored reference, else one of an installed team's.

        Adding the bot to a team is announced in the team's General channel only, so another channel of
        that team (an HR channel such as `19:hr-questions@thread.tacv2`) has no reference of its own. A post
        to a channel goes to `{serviceUrl}/v3/conversations/{channel id}/activities`, and Teams accepts it
        from a bot installed in the channel's team. The channel id does not say which team that is, but only
        the serviceUrl, tenant and bot are taken from the team's reference, and the teams of one tenant
        share them: so a team of the configured tenant (MicrosoftAppTenantId) will do, else, when all
        installed teams are of one tenant, any of them. Teams in several tenants are not guessed between
        (None, and the log says why).
        """
        exact, teams = await self._hr_candidates(hr_id)
        if exact is not None or self._store is None:
            return exact
        configured = self._settings.teams.tenant_id if self._settings.teams else None
        tenants = {_tenant_of_reference(team) for team in teams}
        if configured and configured in tenants:
            tenants = {configured}
        if len(tenants) != 1:
            why = (
                "the bot is in teams of several tenants, and which one holds that channel is unknown"
                if teams
                else "add policybot to the team that holds that channel"
            )
            log.warning("cannot address the Teams HR conversation %s: %s", hr_id, why)
            return None
        return self._via_team(hr_id, teams, tenants.pop()), self._settings.default_lang

    async def hr_reference_for(
        self, hr_id: str, tenant: str | None
    ) -> tuple[ConversationReference, str] | None:
        """How to post an asker's question (Ask HR) into the HR conversation `hr_id`: its own stored
        reference, else a team's of the asker's `tenant`; None (quietly) when neither is stored, and the
        caller goes through the asker's own serviceUrl and tenant.

        Never a team of another tenant: with a multi-tenant app registration the bot can be installed
        anywhere, and one tenant's HR channel must not receive another tenant's questions. An asker
        of unknown tenant (not Teams itself; the Emulator) is not matched to any team.
        """
        exact, teams = await self._hr_candidates(hr_id)
        if exact is not None or not tenant:
            return exact
        if not any(_tenant_of_reference(team) == tenant for team in teams):
            return None
        return self._via_team(hr_id, teams, tenant), self._settings.default_lang

    async def _hr_candidates(
        self, hr_id: str
    ) -> tuple[tuple[ConversationReference, str] | None, list[ConversationReference]]:
        """The HR conversation's own stored reference (if any), and the stored references of team channels.

        Personal and group chats are skipped before their references are deserialized: there is
        one per user who talks to the bot, and they cannot address a team's channel.
        """
        if self._store is None:
            return None, []
        teams: list[ConversationReference] = []
        for stored in await self._store.references(PLATFORM):
            if stored.conversation_id == hr_id:
                return (ConversationReference.deserialize(stored.reference), stored.lang), []
            conversation = stored.reference.get("conversation")
            if isinstance(conversation, dict) and conversation.get("conversationType") == "channel":
                teams.append(ConversationReference.deserialize(stored.reference))
        return None, teams

    @staticmethod
    def _via_team(
        hr_id: str, teams: list[ConversationReference], tenant: str | None
    ) -> ConversationReference:
        """A team's reference of `tenant` (one is in `teams`), pointed at the HR channel instead."""
        reference = next(team for team in teams if _tenant_of_reference(team) == tenant)
        reference.conversation = ConversationAccount(
            id=hr_id, conversation_type="channel", is_group=True, tenant_id=tenant
        )
        return reference

    async def send(self, reference: ConversationReference, activity: Activity) -> str | None:
        """Post `activity` into the referenced conversation as a new message (not a reply).

        Returns the id Teams gave the message (in a channel, the id of the thread it starts), if any.
        """
        reference.activity_id = None  # a stored reference never holds one; a fresh one may
        conversation_id = reference.conversation.id if reference.conversation else "?"
        failure: list[Exception] = []
        sent: list[str | None] = []

        async def logic(turn_context: TurnContext) -> None:
            # The SDK gives the continuation activity a random id, and a send would be posted as a
            # reply to it: clear it so this is a new message in the conversation.
            turn_context.activity.id = None
            try:
                response = await turn_context.send_activity(activity)
            except Exception as exc:  # reported below as a DeliveryError; the adapter would swallow it
                failure.append(exc)
            else:
                sent.append(response.id if response is not None else None)

        try:
            await self._adapter.continue_conversation(reference, logic, bot_app_id=self._app_id)
        except Exception as exc:  # creating the connector (credentials) failed
            raise _delivery_error(conversation_id, exc) from exc
        if failure:
            raise _delivery_error(conversation_id, failure[0]) from failure[0]
        return sent[0] if sent else None

    async def deliver(self, target: Any, reply: Reply) -> None:
        """Send a reply (a daily tip) to `target` = Target("teams", conversation id, lang)."""
        found = await self.reference(target.id)
        if found is None:
            raise DeliveryError(
                f"no Teams conversation reference stored for {target.id}; is the bot still installed there?"
            )
        card = render_card(reply, hr_enabled=False, say=self._say)
        await self.send(found[0], card_activity(card))


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
        hr_id = self.settings.hr_teams_conversation
        reloader = getattr(self.ctx, "reloader", None)
        if not hr_id or reloader is None:
            return
        found = await self.deliverer.hr_reference(hr_id)
        if found is None:  # the log says why
            log.warning("the Teams HR conversation is not told about the knowledge base; see the log above")
            return
        reference, lang = found
        try:
            await self.deliverer.send(reference, self._markdown(reloader.message(result, lang)))
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
    app.router.add_post("/api/messages", bot.handle_http)
    return True


def deliverer(app: web.Application) -> TeamsDeliverer | None:
    """The Teams tips Deliverer of a server app, or None when Teams is not mounted."""
    bot = app.get(TEAMS_BOT)
    return bot.deliverer if bot is not None else None


# ------------------------------------------------------------------------------------------------------
# App package


def write_teams_package(
    app_id: str,
    out: Path | None = None,
    *,
    domains: tuple[str, ...] = (),
    website: str | None = None,
    privacy_url: str | None = None,
    terms_url: str | None = None,
) -> Path:
    """Write the Teams app package (manifest.json, color.png, outline.png, zipped) ready to upload."""
    if not GUID.match(app_id):
        raise ConfigError(f"--app-id {app_id!r} is not a Microsoft app id (a GUID such as 00000000-0000-...)")
    # Caught here rather than at upload: the manifest schema wants a URL scheme and at most 16
    # validDomains, and Teams documents the developer URLs as https://.
    for option, url in (("--website", website), ("--privacy-url", privacy_url), ("--terms-url", terms_url)):
        if url and not url.lower().startswith("https://"):
            raise ConfigError(f"{option} {url!r} is not an https:// URL, which Teams requires")
    if len(domains) > MAX_VALID_DOMAINS:
        raise ConfigError(f"{len(domains)} --domain values: a Teams app allows at most {MAX_VALID_DOMAINS}")
    manifest: dict[str, Any] = json.loads(MANIFEST_TEMPLATE.read_text(encoding="utf-8"))
    manifest["id"] = app_id
    for bot in manifest["bots"]:
        bot["botId"] = app_id
    developer = manifest["developer"]
    if website:
        developer["websiteUrl"] = website
    developer["privacyUrl"] = privacy_url or developer["websiteUrl"]
    developer["termsOfUseUrl"] = terms_url or developer["websiteUrl"]
    manifest["validDomains"] = list(domains)
    out = out or Path("policybot-teams.zip")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        package.write(ASSETS / "color.png", "color.png")
        package.write(ASSETS / "outline.png", "outline.png")
    return out


__all__ = [
    "TeamsBot",
    "TeamsDeliverer",
    "deliverer",
    "lang_from_locale",
    "mount",
    "write_teams_package",
]
