"""Teams proactive sends: posting a card into a conversation the bot is not answering right now.

Holds the botbuilder CloudAdapter wiring (`make_adapter`), since every send goes through it, and
`TeamsDeliverer`: the tips Deliverer, and how Ask HR and knowledge-base notes find the HR conversation
(its own stored reference, else a stored team's reference of the right tenant). The bot in
adapters/teams.py uses both; nothing here imports it.

Known traps of botbuilder 4.17.1 stepped around here (adapters/teams.py lists the others):
- a conversation reference keeps the id of the activity it was taken from; a proactive send through it
  would be posted as a reply to that (by then meaningless) id, so the id is cleared first;
- outgoing Bot Connector calls go through msrest/`requests` (in a thread), not aiohttp: proxies come from
  the environment, so keep loopback in NO_PROXY when the connector is local (the Emulator, tests).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import requests
from botbuilder.core import CardFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes, ConversationAccount, ConversationReference
from msrest.exceptions import ClientRequestError, HttpOperationError

from adapters.teams_auth import make_authentication
from adapters.teams_cards import render_card
from bot.config import Settings
from bot.conversation import Conversation, Reply
from bot.errors import DeliveryError
from bot.store import StoredReference
from bot.tips import Target

log = logging.getLogger(__name__)

PLATFORM = "teams"

# ------------------------------------------------------------------------------------------------------
# SDK wiring


def make_adapter(settings: Settings) -> CloudAdapter:
    """A CloudAdapter that validates every token when an app id is set, and is anonymous otherwise.

    The identity endpoints (cloud, app type) are chosen in adapters/teams_auth.py.
    """
    return CloudAdapter(make_authentication(settings))


def card_activity(card: dict[str, Any]) -> Activity:
    """A message carrying one Adaptive Card (from adapters/teams_cards.py)."""
    return Activity(type=ActivityTypes.message, attachments=[CardFactory.adaptive_card(card)])


class Installs(Protocol):
    """The conversations the bot is installed in (bot.store.Store), to post into them."""

    async def references(self, platform: str) -> list[StoredReference]: ...


def _tenant_of_reference(reference: ConversationReference) -> str | None:
    return reference.conversation.tenant_id if reference.conversation else None


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
        store: Installs | None,
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

    async def deliver(self, target: Target, reply: Reply) -> None:
        """Send a reply (a daily tip) to `target` = Target("teams", conversation id, lang)."""
        found = await self.reference(target.id)
        if found is None:
            raise DeliveryError(
                f"no Teams conversation reference stored for {target.id}; is the bot still installed there?"
            )
        card = render_card(reply, hr_enabled=False, say=self._say)
        await self.send(found[0], card_activity(card))


__all__ = ["PLATFORM", "TeamsDeliverer", "card_activity", "make_adapter"]
