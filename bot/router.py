"""Every workflow of the bot, once, for any chat platform: the router behind `bot.platform.Platform`.

An adapter turns its platform's request into an event of bot/platform.py and calls the method of the
same name here; the router decides what happens (answer, admin command, vote, Ask HR, relay of HR's
answer, install) and sends through the platform. Which platform asked shows only in `platform.name`,
the key HR threads and installs are filed under.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bot.admin import Admin
from bot.claims import Claims, Hold
from bot.conversation import Conversation, Message
from bot.errors import PolicybotError
from bot.platform import (
    INSERT_1,
    AskHr,
    Feedback,
    HrReply,
    Installed,
    Notice,
    Pick,
    Platform,
    Question,
    Uninstalled,
)

if TYPE_CHECKING:
    from bot.reload import Reloader, ReloadResult
    from bot.report import InsightsStore
    from bot.review import ReviewReminder
    from bot.tips import TipScheduler

log = logging.getLogger(__name__)

O = TypeVar("O")  # noqa: E741 (an event's origin, as the adapter that made it knows it)


class Escalation(Protocol):
    """How to reach the asker behind an HR thread, and in which language (bot.store.EscalationRoute)."""

    @property
    def route(self) -> dict[str, Any]: ...
    @property
    def lang(self) -> str: ...


class Escalations(Protocol):
    """Where "Ask HR" threads lead back to (bot.store.Store): how to reach the asker, per HR thread."""

    async def save_escalation(
        self, platform: str, thread_id: str, route: dict[str, Any], lang: str
    ) -> None: ...
    async def escalation(self, platform: str, thread_id: str) -> Escalation | None: ...


class Installs(Protocol):
    """Where the conversations the bot is installed in are kept, for tips (bot.store.Store)."""

    async def save_reference(
        self, platform: str, conversation_id: str, reference: dict[str, Any], lang: str
    ) -> None: ...
    async def remove_reference(self, platform: str, conversation_id: str) -> None: ...


class Router:
    """Runs the bot's workflows; one per process, shared by every platform."""

    def __init__(
        self,
        conversation: Conversation,
        *,
        default_lang: str | None = None,
        admins: frozenset[str] = frozenset(),
        claims: Claims | None = None,
        escalations: Escalations | None = None,
        installs: Installs | None = None,
        insights: InsightsStore | None = None,
        reloader: Reloader | None = None,
        tips: TipScheduler | None = None,
        review: ReviewReminder | None = None,
    ) -> None:
        self.conversation = conversation
        self.review = review  # the weekly "due for review" notice, posted to each platform's HR
        self.default_lang = default_lang or conversation.default_lang  # for events that bring no language
        self.claims = claims or Claims(None)
        self.escalations = escalations
        self.installs = installs
        self.reloader = reloader
        self.admin = Admin(admins, conversation, reloader=reloader, tips=tips, store=insights)
        self.admins = admins
        self.platforms: dict[str, Platform[Any]] = {}  # by name: where answers left pending are posted

    def attach(self, platform: Platform[Any]) -> None:
        """Serve `platform`'s answers left pending by a process that died (bot/pending.py); tell its HR
        conversation when a knowledge-base edit is rejected, and when it is fixed, and post the weekly
        list of answers due for review there."""
        self.platforms[platform.name] = platform
        if not platform.has_hr:
            return
        if self.review is not None:
            self.review.on_notice(platform.tell_hr)
        reloader = self.reloader
        if reloader is None:
            return

        async def notify(result: ReloadResult) -> None:
            await platform.tell_hr(lambda lang: reloader.message(result, lang))

        reloader.on_result(notify)

    async def first_delivery(
        self,
        key: str,
        ttl: timedelta = timedelta(hours=1),
        *,
        ahead: Sequence[tuple[str, timedelta]] = (),
        platform: Platform[O] | None = None,
        question: Question[O] | None = None,
    ) -> bool:
        """False for a platform's redelivery of an event already handled (Slack retries, Teams resends).

        `ahead`: the event's own `once` claim, made in the same store round trip (see bot/claims.py).
        `question`: the event is that question (its `delivery` is `key`): its answer is in progress, kept
        in the store with the claims until `question` is answered, so that a process dying in between
        loses it to no one (bot/pending.py). An admin's message is not kept: a command is never run
        blind later. A redelivery whose answer was left in progress by a dead process is answered.
        """
        hold = None
        if platform is not None and question is not None and not self._from_admin(question):
            reference = platform.reference(question.origin)
            if reference is not None:
                hold = Hold(platform.name, reference, question.text, question.lang_hint)
        return await self.claims.claim(key, ttl, ahead=ahead, hold=hold)

    def _from_admin(self, event: Question[Any]) -> bool:
        return event.admin and event.who is not None and event.who in self.admins

    # ---- questions and commands --------------------------------------------------------------------

    async def question(self, platform: Platform[O], event: Question[O]) -> None:
        """Answer it: an admin command for an admin, the help for nothing typed, else the conversation."""
        if event.once and not await self.claims.claim(event.once, event.once_ttl):
            log.info("a message was answered already (an edit of it); not again")
            self._answered(event)
            return
        lang = event.lang_hint or self.default_lang
        if event.admin:
            answer = await self.admin.run(event.text, event.who, lang)
            if answer is not None:
                async with self.claims.sending(event.delivery):
                    await platform.reply_text(event.origin, answer)
                self._answered(event)
                return
        if not event.text and event.help_when_empty:
            reply = self.conversation.help(lang)
        else:
            message = Message(text=event.text, lang_hint=event.lang_hint, who=event.who, where=event.where)
            reply = await self.conversation.handle(message)
        # Marked as being posted first: a process dying from now on leaves an answer that may be out.
        async with self.claims.sending(event.delivery):
            await platform.reply(event.origin, reply)
        self._answered(event)

    def _answered(self, event: Question[Any]) -> None:
        """Posted (sends log their own failures): the answer in progress is finished."""
        if event.delivery is not None:
            self.claims.answered(event.delivery)

    # ---- buttons -----------------------------------------------------------------------------------

    def _known(self, entry_id: str) -> bool:
        """Buttons outlive knowledge-base reloads: an entry may have been renamed or removed since."""
        return bool(entry_id) and entry_id in self.conversation.kb.entries

    async def pick(self, platform: Platform[O], event: Pick[O]) -> None:
        """A suggestion, related entry or topic was clicked: its answer (the pick is recorded for HR)."""
        if not self._known(event.entry_id):
            await platform.button_not_understood(event.origin, event.lang)
            return
        reply = await self.conversation.answer_entry(event.entry_id, event.lang, question=event.question)
        await platform.reply(event.origin, reply)

    async def feedback(self, platform: Platform[O], event: Feedback[O]) -> None:
        """A vote: recorded (no identity), and the buttons give way to a thank-you."""
        if not self._known(event.entry_id):
            await platform.button_not_understood(event.origin, event.lang)
            return
        thanks = await self.conversation.feedback(event.entry_id, event.helpful, event.lang)
        answer = await self.conversation.answer_entry(event.entry_id, event.lang)  # no question: no record
        await platform.update_card(event.origin, answer, thanks)

    async def button_not_understood(self, platform: Platform[O], origin: O, lang: str) -> None:
        """A button the adapter could not read (an unknown action, a malformed value)."""
        await platform.button_not_understood(origin, lang or self.default_lang)

    # ---- Ask HR and HR's answer ----------------------------------------------------------------------

    async def ask_hr(self, platform: Platform[O], event: AskHr[O]) -> None:
        """Pass the question on to HR, remember how to reach the asker (never the question), tell them."""
        if not event.question:
            await platform.button_not_understood(event.origin, event.lang)
            return
        posted = await platform.post_to_hr(event.origin, event.question) if platform.has_hr else None
        if posted is not None and posted.thread_id and self.escalations is not None:
            try:
                await self.escalations.save_escalation(
                    platform.name, posted.thread_id, posted.route, event.lang
                )
            except PolicybotError as exc:
                log.warning("HR's reply to this escalation cannot be relayed: %s", exc)
        key = "escalation_sent" if posted is not None else "escalation_failed"
        await platform.reply_text(event.origin, self.conversation.say(key, event.lang))

    async def hr_reply(self, platform: Platform[Any], event: HrReply) -> bool:
        """Relay HR's answer in an "Ask HR" thread to the asker; False if the thread is not one of those
        (the message is then an ordinary one)."""
        if self.escalations is None:
            return False
        if event.ignored:
            return True  # edits, deletions, our own relay notes and other bots: never relayed
        try:
            found = await self.escalations.escalation(platform.name, event.thread_id)
        except PolicybotError as exc:
            log.error("could not look up the escalation for an HR reply: %s", exc)
            return True
        if found is None:
            return False  # not an escalation thread (or expired): an ordinary message
        await self._relay(platform, found, event)
        return True

    async def _relay(self, platform: Platform[Any], found: Escalation, event: HrReply) -> None:
        if event.once and not await self.claims.claim(event.once):
            return  # delivered twice (Slack sends a reply that mentions the bot as two events)
        if not event.text:
            return
        sentence = self.conversation.say("hr_reply", found.lang, reply=INSERT_1)
        if await platform.message_privately(found.route, Notice(sentence, ((INSERT_1, event.text),))):
            log.info("relayed HR's reply in an escalation thread to the asker")

    # ---- installs ------------------------------------------------------------------------------------

    async def installed(self, platform: Platform[O], event: Installed[O]) -> None:
        """Keep the conversation for tips; greet a person who added the bot to their own chat."""
        if self.installs is None:
            log.warning("no store configured: the %s conversation will not receive tips", platform.name)
        else:
            await self.installs.save_reference(
                platform.name, event.conversation_id, event.reference, event.lang
            )
            log.info("%s conversation stored for tips", platform.name)
        if event.greet:
            await platform.reply_text(event.origin, self.conversation.say("greeting", event.lang))

    async def uninstalled(self, platform: Platform[Any], event: Uninstalled) -> None:
        if self.installs is not None:
            await self.installs.remove_reference(platform.name, event.conversation_id)
            log.info("%s conversation removed: the bot was uninstalled", platform.name)
