"""The platform-neutral conversation: a `Message` comes in, a `Reply` goes out.

Adapters translate their platform's events into a `Message`, call `Conversation.handle`, and render
the `Reply` (Block Kit, Adaptive Card, plain text). Nothing here knows which platform asked.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from bot.gc_pause import gc_paused
from bot.knowledge import KnowledgeBase, Link
from bot.matching import MAX_QUERY_CHARS, Index, Result, fold, normalise_lang

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """What someone said to the bot, already stripped of platform detail by an adapter.

    `who` and `where` are opaque ids the adapter may use to route the reply; the core never stores
    them next to the text.
    """

    text: str
    lang_hint: str | None = None
    who: str | None = None
    where: str | None = None


class ReplyKind(StrEnum):
    ANSWER = "answer"
    SUGGESTIONS = "suggestions"
    FALLBACK = "fallback"
    HELP = "help"
    TIP = "tip"
    TOPICS = "topics"


@dataclass(frozen=True)
class Choice:
    """An entry offered to the user: a "did you mean" suggestion, or a line of the topic list."""

    entry_id: str
    title: str


@dataclass(frozen=True)
class Reply:
    """Everything an adapter needs to render a reply; adapters own the rendering.

    `text` is the body in Slack/Teams-friendly markdown (answer, prompt, fallback, help, tip).
    `question` is the user's question as received (for "Ask HR"); `labels` holds the bot's own
    button and footer wording from the knowledge base, in the reply's language.
    """

    kind: ReplyKind
    lang: str
    text: str
    title: str | None = None
    entry_id: str | None = None
    links: tuple[Link, ...] = ()
    footer: str | None = None
    choices: tuple[Choice, ...] = ()
    related: tuple[Choice, ...] = ()
    confidence: float = 0.0
    question: str = ""
    labels: dict[str, str] = field(default_factory=dict)


class Recorder:
    """Where the conversation records what HR learns from: questions and feedback, never who asked.

    The base class records nothing (the CLI uses it); `bot.store.Store` records to the database.
    """

    async def record_question(
        self, question: str, lang: str, outcome: ReplyKind, entry_id: str | None, confidence: float
    ) -> None:
        """One question was answered (outcome ANSWER), offered suggestions, or fell back."""

    async def record_feedback(self, entry_id: str, helpful: bool) -> None:
        """Someone pressed 👍 or 👎 under an answer."""

    async def record_suggestion_pick(self, question: str, entry_id: str, lang: str) -> None:
        """Someone picked a "did you mean" suggestion: `question` is a candidate example for the entry."""


# Commands are whole messages; each word also tells the language it was typed in. A word in
# `EITHER_LANGUAGE` is a command in both: the platform's language hint decides, else the language given.
COMMANDS: dict[str, tuple[ReplyKind, str]] = {
    "help": (ReplyKind.HELP, "en"),
    "hjelp": (ReplyKind.HELP, "nb"),
    "tip": (ReplyKind.TIP, "en"),
    "tip of the day": (ReplyKind.TIP, "en"),
    "tips": (ReplyKind.TIP, "nb"),  # the documented Norwegian command, and also English
    "dagens tips": (ReplyKind.TIP, "nb"),
    "topics": (ReplyKind.TOPICS, "en"),
    "topic": (ReplyKind.TOPICS, "en"),
    "emner": (ReplyKind.TOPICS, "nb"),
    "tema": (ReplyKind.TOPICS, "nb"),
    "temaer": (ReplyKind.TOPICS, "nb"),
}
EITHER_LANGUAGE = frozenset({"tips"})
FEEDBACK_LABELS = ("feedback_prompt", "feedback_yes", "feedback_no", "ask_hr", "related", "tip", "topics")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def clean(text: str) -> str:
    """Drop control and invisible characters and collapse runs of white space."""
    return " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", text)).split())


def has_words(text: str) -> bool:
    """False for messages of only emoji, punctuation or symbols."""
    return any(unicodedata.category(c)[0] in "LN" for c in text)


@dataclass(frozen=True)
class _State:
    kb: KnowledgeBase
    index: Index


class Conversation:
    """Turns messages into replies, with one knowledge base at a time (swapped whole on reload)."""

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        default_lang: str = "en",
        recorder: Recorder | None = None,
        hr_contact: str | None = None,
        fit_cache: Path | None = None,
        make_index: Callable[[KnowledgeBase], Index] | None = None,
        index: Index | None = None,
    ) -> None:
        """`index`: one already built for `kb` (the CLI's snapshot, bot/index_cache.py)."""
        self.default_lang = default_lang
        self.fit_cache = fit_cache  # where the fitted confidence is kept per version (the CLI's)
        self.recorder = recorder or Recorder()
        self.hr_contact = hr_contact
        self._make_index = make_index  # how a knowledge base is indexed (tests pass one that fails)
        self._state = _State(kb, index or self._index(kb))
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def kb(self) -> KnowledgeBase:
        return self._state.kb

    @property
    def index(self) -> Index:
        return self._state.index

    def reload(self, kb: KnowledgeBase, index: Index | None = None) -> None:
        """Build the new index first (unless `index` is `kb`'s, built elsewhere), then swap in one
        assignment: a question in flight keeps the state it started with, so it is answered from the old
        or the new knowledge base, never a mix."""
        self._state = _State(kb, index if index is not None else self._index(kb))

    def _index(self, kb: KnowledgeBase) -> Index:
        if self._make_index is not None:
            return self._make_index(kb)
        with gc_paused():  # a third faster for a large knowledge base (see bot/gc_pause.py)
            return Index(kb) if self.fit_cache is None else Index(kb, cache=self.fit_cache)

    def say(self, key: str, lang: str, **values: str) -> str:
        return self._state.kb.say(key, lang, **values)

    def labels(self, lang: str, kb: KnowledgeBase | None = None) -> dict[str, str]:
        kb = kb or self._state.kb
        return {key: kb.say(key, lang) for key in FEEDBACK_LABELS}

    def match(self, text: str, lang_hint: str | None = None) -> Result:
        """The matcher's verdict without side effects (for `policybot match` and `why`)."""
        state = self._state
        text = clean(text)[:MAX_QUERY_CHARS]
        lang = state.index.language(text, lang_hint or self.default_lang)
        return state.index.match(text, lang=lang)

    def command(self, text: str, lang_hint: str | None = None) -> tuple[ReplyKind, str] | None:
        """The command (help, tip, topics) a whole message is, and the language to reply in."""
        word = fold(clean(text)).strip(" !.?/")
        if word not in COMMANDS:
            return None
        kind, lang = COMMANDS[word]
        hint = normalise_lang(lang_hint)
        return kind, (hint or lang) if word in EITHER_LANGUAGE else lang

    async def handle(self, message: Message) -> Reply:
        state = self._state
        raw = message.text or ""
        text = clean(raw)
        long_note = ""
        if len(text) > MAX_QUERY_CHARS:
            text = text[:MAX_QUERY_CHARS]
            long_note = "long_message"
        if not has_words(text):
            lang = self._lang(state.kb, message.lang_hint)
            return self._help(state.kb, lang, key="empty")

        command = self.command(text, message.lang_hint)
        if command is not None:
            kind, command_lang = command
            lang = self._lang(state.kb, command_lang)
            if kind is ReplyKind.HELP:
                return self._help(state.kb, lang)
            if kind is ReplyKind.TIP:
                return self._tip(state.kb, lang)
            return self._topics(state.kb, lang)

        lang = state.index.language(text, message.lang_hint or self.default_lang)
        result = state.index.match(text, lang=lang)
        if result.answer_id is not None:
            reply = self._answer(
                state.kb, result.answer_id, lang, question=text, confidence=result.confidence
            )
        elif result.suggestions:
            reply = Reply(
                kind=ReplyKind.SUGGESTIONS,
                lang=lang,
                text=state.kb.say("did_you_mean", lang),
                choices=tuple(
                    Choice(entry_id, state.kb.text(state.kb.entries[entry_id].title, lang))
                    for entry_id in result.suggestions
                ),
                confidence=result.confidence,
                question=text,
                labels=self.labels(lang, state.kb),
            )
        else:
            contact = self.hr_contact or state.kb.say("hr_contact", lang)
            reply = Reply(
                kind=ReplyKind.FALLBACK,
                lang=lang,
                text=state.kb.say("fallback", lang, hr_contact=contact),
                confidence=result.confidence,
                question=text,
                labels=self.labels(lang, state.kb),
            )
        if long_note:
            reply = _prepend(reply, state.kb.say(long_note, lang))
        best_guess = result.answer_id or (result.ranked[0].entry_id if result.ranked else None)
        # Written in the background: nobody should wait for the database to get their answer.
        task = asyncio.get_running_loop().create_task(
            self._record(text, lang, reply.kind, best_guess, result.confidence)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return reply

    async def drain(self) -> None:
        """Wait until every question recorded in the background is written (before shutting down)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def answer_entry(self, entry_id: str, lang: str, *, question: str = "") -> Reply:
        """The answer to one entry, e.g. when a "did you mean" suggestion was picked."""
        kb = self._state.kb
        lang = self._lang(kb, lang)
        if entry_id not in kb.entries:  # the entry was removed by a reload since the buttons were sent
            return self._topics(kb, lang)
        if question:
            try:
                await self.recorder.record_suggestion_pick(clean(question)[:MAX_QUERY_CHARS], entry_id, lang)
            except Exception:  # recording is best effort: the user still gets the answer
                log.exception("could not record a picked suggestion")
        return self._answer(kb, entry_id, lang, question=question, confidence=1.0)

    async def feedback(self, entry_id: str, helpful: bool, lang: str) -> str:
        """Record 👍/👎 for an answer (no identity) and return the thank-you sentence."""
        lang = self._lang(self._state.kb, lang)
        await self.recorder.record_feedback(entry_id, helpful)
        return self.say("feedback_thanks" if helpful else "feedback_thanks_unhelpful", lang)

    def help(self, lang: str) -> Reply:
        kb = self._state.kb
        return self._help(kb, self._lang(kb, lang))

    def topics(self, lang: str) -> Reply:
        kb = self._state.kb
        return self._topics(kb, self._lang(kb, lang))

    def tip(self, lang: str, tip_id: str | None = None) -> Reply:
        kb = self._state.kb
        return self._tip(kb, self._lang(kb, lang), tip_id)

    def _lang(self, kb: KnowledgeBase, hint: str | None) -> str:
        """The language to reply in without a question to read it from: the hint's, if the knowledge
        base speaks it, else the configured default, else the knowledge base's main language."""
        for choice in (normalise_lang(hint), normalise_lang(self.default_lang)):
            if choice in kb.languages:
                return choice
        return kb.languages[0]

    # ----------------------------------------------------------------------------------- building

    def _answer(
        self, kb: KnowledgeBase, entry_id: str, lang: str, *, question: str, confidence: float
    ) -> Reply:
        entry = kb.entries[entry_id]
        if lang not in entry.answer:  # HR has not translated it yet: answer in the language there is
            lang = next((x for x in (self.default_lang, *kb.languages) if x in entry.answer), lang)
            lang = lang if lang in entry.answer else next(iter(entry.answer))
        footer = []
        if entry.source:
            footer.append(kb.say("footer_source", lang, source=kb.text(entry.source, lang)))
        if entry.owner:
            footer.append(kb.say("footer_owner", lang, owner=entry.owner))
        if entry.reviewed:
            footer.append(kb.say("footer_reviewed", lang, date=entry.reviewed.isoformat()))
        return Reply(
            kind=ReplyKind.ANSWER,
            lang=lang,
            text=entry.answer[lang],
            title=kb.text(entry.title, lang),
            entry_id=entry_id,
            links=entry.links,
            footer=" · ".join(footer) or None,
            related=tuple(
                Choice(r, kb.text(kb.entries[r].title, lang)) for r in entry.related if r in kb.entries
            ),
            confidence=confidence,
            question=question,
            labels=self.labels(lang, kb),
        )

    def _help(self, kb: KnowledgeBase, lang: str, key: str = "help") -> Reply:
        return Reply(kind=ReplyKind.HELP, lang=lang, text=kb.say(key, lang), labels=self.labels(lang, kb))

    def _topics(self, kb: KnowledgeBase, lang: str) -> Reply:
        return Reply(
            kind=ReplyKind.TOPICS,
            lang=lang,
            text=kb.say("topics", lang),
            choices=tuple(Choice(e.id, kb.text(e.title, lang)) for e in kb.entries.values()),
            labels=self.labels(lang, kb),
        )

    def _tip(self, kb: KnowledgeBase, lang: str, tip_id: str | None = None) -> Reply:
        tips = {t.id: t for t in kb.tips}
        if not tips:
            return self._help(kb, lang)
        tip = tips.get(tip_id) if tip_id else None
        if tip is None:
            tip = random.choice(list(tips.values()))  # not security-relevant: any tip will do
        related: tuple[Choice, ...] = ()
        if tip.entry and tip.entry in kb.entries:
            related = (Choice(tip.entry, kb.text(kb.entries[tip.entry].title, lang)),)
        return Reply(
            kind=ReplyKind.TIP,
            lang=lang,
            text=kb.text(tip.text, lang),
            title=kb.say("tip", lang),
            entry_id=tip.id,
            related=related,
            labels=self.labels(lang, kb),
        )

    async def _record(
        self, question: str, lang: str, kind: ReplyKind, entry_id: str | None, confidence: float
    ) -> None:
        try:
            await self.recorder.record_question(question, lang, kind, entry_id, confidence)
        except Exception:  # the store being down must not cost the user their answer
            log.exception("could not record a question")


def _prepend(reply: Reply, note: str) -> Reply:
    return replace(reply, text=f"_{note}_\n\n{reply.text}")
