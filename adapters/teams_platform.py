"""The Teams side of the port (bot/platform.py): how the router's sends become Bot Framework activities.

`TeamsPlatform` renders replies as Adaptive Cards (adapters/teams_cards.py) and answers in the turn
the event came in (`TeamsTurn`); posts to the HR conversation and to an asker afterwards go proactively
through adapters/teams_delivery.py. adapters/teams.py turns activities into the router's events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes, ConversationAccount, ConversationReference
from msrest.exceptions import HttpOperationError

from adapters.teams_cards import render_card
from adapters.teams_delivery import PLATFORM, TeamsDeliverer, card_activity
from bot.config import Settings
from bot.conversation import Conversation, Reply
from bot.errors import DeliveryError
from bot.platform import HrPost, Notice, Posted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeamsTurn:
    """The turn an activity came in: replies go back through it. `tenant` is read from the raw body
    (`channelData.tenant.id`), which the SDK's parsing drops."""

    context: TurnContext
    tenant: str | None = None


def reference_of(activity: Activity, tenant: str | None) -> ConversationReference:
    """The reference to post into this conversation later: no activity id, no user, the tenant kept."""
    reference = TurnContext.get_conversation_reference(activity)
    reference.activity_id = None
    reference.user = None  # a tip goes to the conversation, not to the person who installed the bot
    if tenant and reference.conversation is not None:
        reference.conversation.tenant_id = tenant
    return reference


def markdown(text: str) -> Activity:
    return Activity(type=ActivityTypes.message, text=text, text_format="markdown")


class TeamsPlatform:
    """The router's sends, as Bot Framework activities."""

    def __init__(self, settings: Settings, conversation: Conversation, deliverer: TeamsDeliverer) -> None:
        self.settings = settings
        self.conversation = conversation
        self.deliverer = deliverer
        self.hr_id = settings.hr_teams_conversation

    @property
    def name(self) -> str:
        return PLATFORM

    @property
    def has_hr(self) -> bool:
        return bool(self.hr_id)

    async def reply(self, origin: TeamsTurn, reply: Reply) -> None:
        card = render_card(reply, hr_enabled=self.has_hr, say=self.conversation.say)
        await origin.context.send_activity(card_activity(card))

    async def reply_text(self, origin: TeamsTurn, text: str) -> None:
        await origin.context.send_activity(markdown(text))

    async def update_card(self, origin: TeamsTurn, answer: Reply, thanks: str) -> None:
        """Swap the card whose button was pressed (no second vote); without its id, just say thanks."""
        card = render_card(answer, hr_enabled=False, say=self.conversation.say, thanks=thanks)
        card_id = origin.context.activity.reply_to_id
        if card_id:
            update = card_activity(card)
            update.id = card_id
            try:
                await origin.context.update_activity(update)
                return
            except HttpOperationError as exc:
                log.info("could not update the Teams card (%s); sending the thanks instead", exc)
        await origin.context.send_activity(markdown(thanks))

    async def button_not_understood(self, origin: TeamsTurn, lang: str) -> None:
        """The help: the card the button was on may be old, and the person is waiting for something."""
        log.info("a Teams card action that cannot be acted on; answering with the help")
        await origin.context.send_activity(markdown(self.conversation.say("help", lang)))

    async def post_to_hr(self, origin: TeamsTurn, question: str) -> HrPost | None:
        """The question into the HR conversation, as plain text (the asker's words reach HR inert)."""
        if not self.hr_id:
            return None
        activity = origin.context.activity
        found = await self.deliverer.hr_reference_for(self.hr_id, origin.tenant)
        if found is not None:
            reference, hr_lang = found
        else:  # no team of the asker's tenant to address it through: this activity's service and tenant
            reference = reference_of(activity, origin.tenant)
            reference.conversation = ConversationAccount(id=self.hr_id, tenant_id=origin.tenant)
            hr_lang = self.settings.default_lang
        user = (activity.from_property.name if activity.from_property else None) or "?"
        text = self.conversation.say("escalation_to_hr", hr_lang, question=question, user=user)
        message = Activity(type=ActivityTypes.message, text=text, text_format="plain")
        try:
            posted = await self.deliverer.send(reference, message)
        except DeliveryError as exc:
            log.warning("Ask HR could not be delivered to the HR conversation: %s", exc)
            return None
        thread = None
        if posted and reference.conversation is not None:
            thread = f"{reference.conversation.id};messageid={posted}"
        # How to reach the asker: their conversation's reference (no user); never the question.
        return HrPost(thread, reference_of(activity, origin.tenant).serialize())

    async def message_privately(self, route: dict[str, Any], notice: Notice) -> bool:
        try:
            await self.deliverer.send(ConversationReference.deserialize(route), markdown(notice.plain()))
        except DeliveryError as exc:
            log.warning("HR's reply could not be relayed to the asker: %s", exc)
            return False
        return True

    def reference(self, origin: TeamsTurn) -> dict[str, Any] | None:
        """The conversation's reference (service, conversation, tenant), without the user or activity."""
        return dict(reference_of(origin.context.activity, origin.tenant).serialize())

    async def post_later(self, reference: dict[str, Any], reply: Reply) -> Posted:
        """The answer card, sent proactively into the referenced conversation."""
        card = render_card(reply, hr_enabled=self.has_hr, say=self.conversation.say)
        try:
            await self.deliverer.send(ConversationReference.deserialize(reference), card_activity(card))
        except DeliveryError as exc:
            log.error("an answer left pending could not be sent to Teams: %s", exc)
            # Not retryable: refused for good, or a timeout that may have posted it (see teams_delivery).
            return Posted.TRY_LATER if exc.retryable else Posted.UNKNOWN
        return Posted.POSTED

    async def tell_hr(self, text: Callable[[str], str]) -> None:
        if not self.hr_id:
            return
        found = await self.deliverer.hr_reference(self.hr_id)
        if found is None:  # the log says why
            log.warning("the Teams HR conversation is not told about the knowledge base; see the log above")
            return
        reference, lang = found
        try:
            await self.deliverer.send(reference, markdown(text(lang)))
        except DeliveryError as exc:
            log.warning("could not tell the Teams HR conversation about the knowledge base: %s", exc)
