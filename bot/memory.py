"""An in-memory chat platform: the bot's workflows as conversations, with no HTTP and no SDK.

Like errbot's test backend, it is shipped with the package: `MemoryPlatform` implements the port
(bot/platform.py) by recording what the bot sends, and `Chat` talks to a `Router` the way a person, a
button and HR would. The workflows are tested once through it (tests/bot/test_router.py); the Slack and
Teams suites test only how their adapters translate and render.

    chat = Chat(router)
    [answer] = await chat.ask("can I add my manager on fb?")
    await chat.vote(answer, helpful=True)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.conversation import Reply
from bot.platform import (
    AskHr,
    Feedback,
    HrPost,
    HrReply,
    Installed,
    Notice,
    Pick,
    Posted,
    Question,
    Uninstalled,
)
from bot.router import Router
from bot.tip_schedule import Target

HR = "hr"  # the in-memory HR conversation


@dataclass(frozen=True)
class Place:
    """Where an event came from: a conversation, and who wrote or clicked there."""

    conversation: str
    who: str = "someone"


@dataclass(frozen=True)
class Sent:
    """One thing the bot sent, of `kind` "reply", "text", "card", "not_understood", "hr", "private", "tip"."""

    kind: str
    to: str
    text: str = ""
    reply: Reply | None = None


class MemoryPlatform:
    """The port, recording every send in `sent`; `fail_hr` makes the HR conversation unreachable.

    It is also the platform's tip `Deliverer` (bot/tips.py): `deliver` records a tip like any send.
    """

    def __init__(self, *, name: str = "memory", hr: bool = True, hr_lang: str = "en") -> None:
        self._name = name
        self.platform = name  # what tips file their targets under (`Deliverer.platform`)
        self._hr = hr
        self.hr_lang = hr_lang
        self.fail_hr = False
        self.fail_private = False
        self.later: list[Posted] = []  # how the next `post_later`s go (then: POSTED)
        self.sent: list[Sent] = []
        self._threads = itertools.count(1)

    @property
    def name(self) -> str:
        return self._name

    @property
    def has_hr(self) -> bool:
        return self._hr

    async def reply(self, origin: Place, reply: Reply) -> None:
        self.sent.append(Sent("reply", origin.conversation, reply.text, reply))

    async def reply_text(self, origin: Place, text: str) -> None:
        self.sent.append(Sent("text", origin.conversation, text))

    async def update_card(self, origin: Place, answer: Reply, thanks: str) -> None:
        self.sent.append(Sent("card", origin.conversation, thanks, answer))

    async def button_not_understood(self, origin: Place, lang: str) -> None:
        self.sent.append(Sent("not_understood", origin.conversation, lang))

    async def post_to_hr(self, origin: Place, question: str) -> HrPost | None:
        if self.fail_hr:
            return None
        thread = f"{HR}:{next(self._threads)}"
        self.sent.append(Sent("hr", thread, f"{origin.who} asks: {question}"))
        return HrPost(thread, {"conversation": origin.conversation})

    async def message_privately(self, route: dict[str, Any], notice: Notice) -> bool:
        if self.fail_private:
            return False
        self.sent.append(Sent("private", str(route["conversation"]), notice.plain()))
        return True

    async def tell_hr(self, text: Callable[[str], str]) -> None:
        self.sent.append(Sent("hr", HR, text(self.hr_lang)))

    def reference(self, origin: Place) -> dict[str, Any] | None:
        return {"conversation": origin.conversation}

    async def post_later(self, reference: dict[str, Any], reply: Reply) -> Posted:
        outcome = self.later.pop(0) if self.later else Posted.POSTED
        if outcome in (Posted.POSTED, Posted.UNKNOWN):  # an unknown outcome: it did go through here
            self.sent.append(Sent("reply", str(reference["conversation"]), reply.text, reply))
        return outcome

    async def deliver(self, target: Target, reply: Reply) -> None:
        self.sent.append(Sent("tip", target.id, reply.text, reply))

    def take(self) -> list[Sent]:
        """What was sent since the last `take` (and forget it)."""
        sent, self.sent = self.sent, []
        return sent


class Chat:
    """A person (or HR) talking to the bot through a `MemoryPlatform`; each call returns what was sent."""

    def __init__(
        self,
        router: Router,
        platform: MemoryPlatform | None = None,
        *,
        conversation: str = "dm-1",
        who: str = "U1",
        lang_hint: str | None = None,
    ) -> None:
        self.router = router
        self.platform = platform or MemoryPlatform()
        self.place = Place(conversation, who)
        self.lang_hint = lang_hint
        router.attach(self.platform)

    async def ask(
        self, text: str, *, admin: bool = True, once: str | None = None, delivery: str | None = None
    ) -> list[Sent]:
        """Write `text` to the bot (admin commands are recognised, as in a Teams chat or /policy).

        `delivery`: the platform's event id; a redelivery of an event already handled gets nothing."""
        event = self._question(text, admin, once, delivery)
        if delivery is not None and not await self.router.first_delivery(
            delivery, platform=self.platform, question=event
        ):
            return []
        await self.router.question(self.platform, event)
        return self.platform.take()

    async def acknowledged(self, text: str, *, delivery: str, admin: bool = False) -> bool:
        """The platform delivers `text` and is acknowledged, and the process dies before answering:
        whether the delivery was claimed (a question in progress, if it is one)."""
        event = self._question(text, admin, None, delivery)
        return await self.router.first_delivery(delivery, platform=self.platform, question=event)

    def _question(self, text: str, admin: bool, once: str | None, delivery: str | None) -> Question[Place]:
        return Question(
            self.place, text, who=self.place.who, lang_hint=self.lang_hint, admin=admin, once=once,
            delivery=delivery,
        )  # fmt: skip

    async def command(self, text: str) -> list[Sent]:
        """A slash command: as `ask`, but nothing typed gets the help."""
        event = Question(
            self.place, text, who=self.place.who, lang_hint=self.lang_hint, admin=True, help_when_empty=True
        )
        await self.router.question(self.platform, event)
        return self.platform.take()

    async def pick(self, reply: Reply, number: int = 0, *, related: bool = False) -> list[Sent]:
        """Click a suggestion (or, `related`, a related entry) of `reply`."""
        choice = (reply.related if related else reply.choices)[number]
        await self.router.pick(self.platform, Pick(self.place, choice.entry_id, reply.lang, reply.question))
        return self.platform.take()

    async def vote(self, reply: Reply, *, helpful: bool) -> list[Sent]:
        assert reply.entry_id is not None, "only answers have feedback buttons"
        await self.router.feedback(self.platform, Feedback(self.place, reply.entry_id, helpful, reply.lang))
        return self.platform.take()

    async def ask_hr(self, reply: Reply) -> list[Sent]:
        """Press "Ask HR" under `reply`."""
        await self.router.ask_hr(self.platform, AskHr(self.place, reply.question, reply.lang))
        return self.platform.take()

    async def hr_answers(self, thread: str, text: str, *, once: str | None = None) -> tuple[bool, list[Sent]]:
        """HR writes `text` in `thread` of the HR conversation: (whether it was relayed, what was sent)."""
        relayed = await self.router.hr_reply(self.platform, HrReply(thread, text, once=once))
        return relayed, self.platform.take()

    async def install(self, *, greet: bool = True, lang: str = "en") -> list[Sent]:
        reference = {"conversation": {"id": self.place.conversation}}
        event = Installed(self.place, self.place.conversation, reference, lang, greet=greet)
        await self.router.installed(self.platform, event)
        return self.platform.take()

    async def uninstall(self) -> list[Sent]:
        await self.router.uninstalled(self.platform, Uninstalled(self.place.conversation))
        return self.platform.take()


__all__ = ["HR", "Chat", "MemoryPlatform", "Place", "Sent"]
