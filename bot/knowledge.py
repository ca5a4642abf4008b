"""What the knowledge base HR edits is: entries, daily tips, the bot's own sentences and synonyms.

The languages the bot speaks, the sentences it must be given (with their placeholders), and the frozen
dataclasses the rest of the bot reads. Reading and validating the YAML files lives in
`bot.knowledge_loader`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from bot.calibration import ANSWER_WHEN_SURE
from bot.errors import Problem

LANGS: tuple[str, ...] = ("en", "nb")
LANG_NAMES = {"en": "English", "nb": "Norwegian (nb)"}

# The bot's own sentences, with the placeholders each one must contain.
MESSAGE_KEYS: dict[str, tuple[str, ...]] = {
    "greeting": (),
    "help": (),
    "empty": (),
    "did_you_mean": (),
    "fallback": ("hr_contact",),
    "hr_contact": (),
    "topics": (),
    "tip": (),
    "related": (),
    "feedback_prompt": (),
    "feedback_yes": (),
    "feedback_no": (),
    "feedback_thanks": (),
    "feedback_thanks_unhelpful": (),
    "ask_hr": (),
    "escalation_sent": (),
    "escalation_failed": (),
    "escalation_to_hr": ("question",),
    "hr_reply": ("reply",),
    "footer_source": ("source",),
    "footer_owner": ("owner",),
    "footer_reviewed": ("date",),
    "not_allowed": (),
    "reload_ok": ("version",),
    "reload_failed": ("count",),
    "unknown_command": ("command",),
    "long_message": (),
}
# What HR admins are told (replies to `why`, `report`, `tip now`, the weekly review notice). A folder
# written for an earlier policybot may lack them: the loader then takes the wording shipped with
# policybot, so an upgrade never makes HR's knowledge base invalid.
ADMIN_MESSAGE_KEYS: dict[str, tuple[str, ...]] = {
    "admin_failed": ("command", "error"),
    "admin_unavailable": ("command",),
    "tip_now_posted": ("count", "platforms"),
    "tip_now_personal": ("platform", "statuses"),
    "tip_now_no_targets": (),
    "tip_now_unavailable": (),
    "why_title": ("question", "language"),
    "why_answers": ("entry", "confidence", "answer_at"),
    "why_suggests": ("entries", "confidence", "answer_at"),
    "why_falls_back": ("confidence", "answer_at"),
    "why_not_specific": (),
    "why_closest": ("question", "entry", "score", "signals"),
    "why_signals": ("words", "resemblance"),
    "why_signals_out_of_scope": ("words",),
    "why_runners_up": (),
    "why_no_runners_up": (),
    "why_no_example": (),
    "why_words": ("words",),
    "why_advice": (),
    "why_out_of_scope": (),
    "why_removed": ("entry",),
    "report_title": ("period", "total", "answered"),
    "report_since": ("date",),
    "report_all": (),
    "report_top": (),
    "report_worst": (),
    "report_gaps": (),
    "report_closest": ("entry",),
    "report_none": (),
    "report_stale": (),
    "report_more": (),
    "stale_notice": ("count",),
}
ALL_MESSAGE_KEYS: dict[str, tuple[str, ...]] = {**MESSAGE_KEYS, **ADMIN_MESSAGE_KEYS}
# Placeholders a message may use beyond the required ones.
OPTIONAL_PLACEHOLDERS: dict[str, tuple[str, ...]] = {"escalation_to_hr": ("user",), "why_signals": ("usual",)}


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    title: Mapping[str, str]  # per language; HR may give one string for both

    def title_in(self, lang: str) -> str:
        return self.title.get(lang) or next(iter(self.title.values()), self.url)


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    title: Mapping[str, str]
    questions: Mapping[str, tuple[str, ...]]
    answer: Mapping[str, str]
    tags: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    related: tuple[str, ...] = ()
    source: Mapping[str, str] = field(default_factory=dict)
    owner: str | None = None
    reviewed: date | None = None
    file: str = ""
    line: int = 0
    question_lines: Mapping[str, int] = field(default_factory=dict)  # example question -> its line

    def line_of(self, question: str) -> int:
        return self.question_lines.get(question, self.line)


@dataclass(frozen=True, slots=True)
class Tip:
    id: str
    text: Mapping[str, str]
    entry: str | None = None
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class KnowledgeBase:
    entries: Mapping[str, Entry]
    tips: tuple[Tip, ...]
    messages: Mapping[str, Mapping[str, str]]
    synonyms: Mapping[str, tuple[str, ...]]
    version: str
    out_of_scope: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source_dir: str = ""
    warnings: tuple[Problem, ...] = ()
    languages: tuple[str, ...] = LANGS  # the first is the main one: where a translation is missing
    answer_when_sure: float = ANSWER_WHEN_SURE  # percent of confidence needed to answer outright

    def __repr__(self) -> str:
        """Short: written out in full, 10 000 entries make megabytes of text and seconds of CPU (and
        Python 3.11's `asyncio.run` writes out the repr of what its task returned)."""
        return (
            f"KnowledgeBase(version={self.version!r}, {len(self.entries)} entries, from {self.source_dir!r})"
        )

    def say(self, key: str, lang: str, **values: str) -> str:
        """One of the bot's own sentences in `lang`, with its placeholders filled in."""
        return self.text(self.messages[key], lang).format_map(_Blank(values))

    def text(self, texts: Mapping[str, str], lang: str) -> str:
        """A text in `lang`, else in the main language, else English, else whichever there is."""
        for choice in (lang, self.languages[0], "en"):
            if texts.get(choice):
                return texts[choice]
        return next(iter(texts.values()), "")


class _Blank(dict[str, str]):
    """Leaves an optional placeholder empty instead of failing when the bot has no value for it."""

    def __missing__(self, key: str) -> str:
        return ""
