"""The port: what a chat platform does for the bot, and the platform-neutral events it brings in.

An adapter (adapters/slack.py, adapters/teams.py, or `bot.memory` in tests) parses its platform's
request into one of the events below and hands it to `bot.router.Router`, which runs the workflow
and calls back through `Platform` to send. `O` is the adapter's own handle on where an event came from
(a Slack payload, a Teams turn): the core passes it back untouched and never looks inside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from bot.conversation import Reply

T = TypeVar("T")  # the adapter's handle on where an event came from
O_contra = TypeVar("O_contra", contravariant=True)

# Placeholders a sentence carries for words that are not the bot's (see `Notice`).
INSERT_1 = "\x01"
INSERT_2 = "\x02"


# ---------------------------------------------------------------------------------------- outgoing


@dataclass(frozen=True)
class Notice:
    """A sentence of the bot's (markdown, from messages.yaml) with someone else's words to put in.

    `text` holds placeholders (`INSERT_1`, …) where `inserts` go. A platform renders `text` in its own
    markup first and puts each insert in afterwards, made inert its own way, so that a `[title](url)`
    an asker typed is never turned into a link posted in the bot's name.
    """

    text: str
    inserts: tuple[tuple[str, str], ...] = ()

    def plain(self) -> str:
        """The sentence with the inserts put in as they are (for platforms that post markdown as is)."""
        text = self.text
        for marker, words in self.inserts:
            text = text.replace(marker, words)
        return text


@dataclass(frozen=True)
class HrPost:
    """Ask HR's question was posted in the HR conversation.

    `thread_id` names the thread HR answers in (None when the platform did not say), and `route` how to
    reach the asker from there (JSON: a Slack user id, a Teams conversation reference) — never the question.
    """

    thread_id: str | None
    route: dict[str, Any]


class Posted(StrEnum):
    """How a post made later (`Platform.post_later`) went. Only TRY_LATER is posted again: a post that
    may have gone through (UNKNOWN: a timeout, a dropped connection) never is, so none is seen twice."""

    POSTED = "posted"
    UNKNOWN = "unknown"
    REFUSED = "refused"  # the platform said no for good (the bot was removed, the channel archived)
    TRY_LATER = "try later"  # certainly not posted (rate limited, unreachable)


class Platform(Protocol[O_contra]):
    """What a chat platform must do for the bot. Sends log their own failures; none raises for them."""

    @property
    def name(self) -> str:
        """ "slack", "teams", …: the key the store files installs and HR threads under."""
        ...

    @property
    def has_hr(self) -> bool:
        """Whether an HR conversation is configured (Ask HR, reload notices)."""
        ...

    async def reply(self, origin: O_contra, reply: Reply) -> None:
        """Answer where the event came from (the conversation, its thread, or privately to the clicker)."""

    async def reply_text(self, origin: O_contra, text: str) -> None:
        """A plain sentence (an admin command's answer, a notice) where the event came from."""

    async def update_card(self, origin: O_contra, answer: Reply, thanks: str) -> None:
        """After a vote: the answer whose button was pressed, with `thanks` in place of its buttons."""

    async def button_not_understood(self, origin: O_contra, lang: str) -> None:
        """A button the bot can no longer act on (its entry was removed since, or it is malformed)."""

    async def post_to_hr(self, origin: O_contra, question: str) -> HrPost | None:
        """Post the asker's question (Ask HR) into the HR conversation; None if it could not be."""

    async def message_privately(self, route: dict[str, Any], notice: Notice) -> bool:
        """Send `notice` to the person `route` (from an `HrPost`) leads to; False if it failed."""

    async def tell_hr(self, text: Callable[[str], str]) -> None:
        """Post a note to the HR conversation, in HR's language: `text(lang)` gives it (markdown)."""

    def reference(self, origin: O_contra) -> dict[str, Any] | None:
        """Where an answer to `origin` can be posted later by any process (JSON: a conversation and
        thread, never who asked); None where that cannot be done (a private reply to a click)."""

    async def post_later(self, reference: dict[str, Any], reply: Reply) -> Posted:
        """Post an answer through a `reference`, from a process other than the one that took the event."""


# ---------------------------------------------------------------------------------------- incoming


@dataclass(frozen=True)
class Question(Generic[T]):
    """Someone wrote to the bot. `admin`: admin commands are recognised here (Teams, Slack's /policy);
    `help_when_empty`: nothing typed gets the help (a bare slash command); `once`: answered once per
    key, for `once_ttl` (a Slack message edited to mention the bot comes again); `delivery`: its answer
    finishes the answer in progress that `Router.first_delivery(delivery, question=…)` stored."""

    origin: T
    text: str
    who: str | None = None
    where: str | None = None
    lang_hint: str | None = None
    admin: bool = False
    help_when_empty: bool = False
    once: str | None = None
    once_ttl: timedelta = timedelta(hours=1)
    delivery: str | None = None  # the key the event was claimed by (`Router.first_delivery`)


@dataclass(frozen=True)
class Pick(Generic[T]):
    """A "did you mean" suggestion, a related entry or a topic was clicked."""

    origin: T
    entry_id: str
    lang: str
    question: str = ""


@dataclass(frozen=True)
class Feedback(Generic[T]):
    """👍 or 👎 under an answer."""

    origin: T
    entry_id: str
    helpful: bool
    lang: str


@dataclass(frozen=True)
class AskHr(Generic[T]):
    """The "Ask HR" button: pass the question on to the HR conversation."""

    origin: T
    question: str
    lang: str


@dataclass(frozen=True)
class HrReply:
    """A message in a thread of the HR conversation, which may be HR answering an "Ask HR" question.

    `text` is HR's words in the platform's own markup, the bot's mention removed and made inert;
    `ignored`: not HR writing (the bot itself, another bot, an edit); `once`: relayed once per key.
    """

    thread_id: str
    text: str
    ignored: bool = False
    once: str | None = None


@dataclass(frozen=True)
class Installed(Generic[T]):
    """The bot was added to a conversation; `reference` is how to post there later (tips)."""

    origin: T
    conversation_id: str
    reference: dict[str, Any]
    lang: str
    greet: bool = False


@dataclass(frozen=True)
class Uninstalled:
    """The bot was removed from a conversation."""

    conversation_id: str


__all__ = [
    "INSERT_1",
    "INSERT_2",
    "AskHr",
    "Feedback",
    "HrPost",
    "HrReply",
    "Installed",
    "Notice",
    "Pick",
    "Platform",
    "Posted",
    "Question",
    "Uninstalled",
]
