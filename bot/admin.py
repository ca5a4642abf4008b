"""HR admins' chat commands: `reload`, `report`, `tip now` and `why <question>`.

Admins are listed in `POLICYBOT_ADMINS` (Slack user ids, Teams AAD object ids). Anyone else who types
`reload`, `report` or `tip now` gets the `not_allowed` sentence and nothing happens. `why …` is the one
exception: for someone who is not an admin it is an ordinary question ("why can't I post photos from
work?" is a fair thing for an employee to ask), answered as usual and never diagnosed.

Platform-neutral: the adapters parse nothing themselves; they pass the text and who typed it, and
render the markdown that comes back.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.conversation import Conversation, clean
from bot.errors import PolicybotError
from bot.knowledge import KnowledgeBase
from bot.matching import OUT_OF_SCOPE, Match

if TYPE_CHECKING:  # only for annotations
    from bot.reload import Reloader
    from bot.report import InsightsStore
    from bot.tips import TipOutcome, TipScheduler

log = logging.getLogger(__name__)

RUNNERS_UP = 4


@dataclass(frozen=True)
class AdminCommand:
    name: str  # "reload", "report", "tip_now" or "why"
    argument: str = ""


def parse(text: str) -> AdminCommand | None:
    """The admin command a whole message is, if it is one (English command words, any case)."""
    words = clean(text)
    bare = words.lower().strip(" /.!")
    if bare in ("reload", "report", "tip now"):
        return AdminCommand(bare.replace(" ", "_"))
    if bare.startswith("why ") and words[4:].strip():
        return AdminCommand("why", words.strip(" /")[4:].strip())
    return None


class Admin:
    """Runs an admin command for `who`; `None` means "not a command for this person: answer as usual"."""

    def __init__(
        self,
        admins: frozenset[str],
        conversation: Conversation,
        *,
        reloader: Reloader | None = None,
        tips: TipScheduler | None = None,
        store: InsightsStore | None = None,
    ) -> None:
        self.admins = admins
        self.conversation = conversation
        self.reloader = reloader
        self.tips = tips
        self.store = store

    def allowed(self, who: str | None) -> bool:
        return bool(who) and who in self.admins

    async def run(self, text: str, who: str | None, lang: str) -> str | None:
        command = parse(text)
        if command is None:
            return None
        if not self.allowed(who):
            if command.name == "why":
                return None  # an employee's own "why …?" question
            log.info("admin command '%s' refused: not an admin", command.name)  # no ids in logs
            return self.conversation.say("not_allowed", lang)
        log.info("admin command '%s'", command.name)
        try:
            return await self._run(command, lang)
        except PolicybotError as exc:  # the database is down, no tip target…: say so, do not fail
            log.warning("admin command '%s' failed: %s", command.name, exc)
            return self.conversation.say("admin_failed", lang, command=_typed(command), error=str(exc))

    async def _run(self, command: AdminCommand, lang: str) -> str:
        if command.name == "reload":
            return await self._reload(lang)
        if command.name == "tip_now":
            return await self._tip_now(lang)
        if command.name == "report":
            return await self._report(lang)
        return self.why(command.argument, lang)

    async def _reload(self, lang: str) -> str:
        if self.reloader is None:
            return self.conversation.say("admin_unavailable", lang, command="reload")
        result = await self.reloader.reload("reload command")
        return self.reloader.message(result, lang)

    async def _tip_now(self, lang: str) -> str:
        if self.tips is None:
            return self.conversation.say("tip_now_unavailable", lang)
        outcomes = await self.tips.post_now()
        if not outcomes:
            return self.conversation.say("tip_now_no_targets", lang)
        return tip_now_reply(outcomes, self.conversation.kb, lang)

    async def _report(self, lang: str) -> str:
        if self.store is None:
            return self.conversation.say("admin_unavailable", lang, command="report")
        from bot.report import summary  # the insights module is only needed here

        return await summary(self.store, self.conversation.kb, lang, index=self.conversation.index)

    def why(self, question: str, lang: str = "en") -> str:
        """Why a question gets the reply it gets: the verdict, the matching example and the runners-up.
        In the admin's language `lang`, with the sentences from messages.yaml."""
        result = self.conversation.match(question)
        kb = self.conversation.kb
        say = functools.partial(kb.say, lang=lang)
        confidence, answer_at = f"{result.confidence:.0%}", f"{result.answer_at:.0%}"
        if result.answer_id is not None:
            verdict = say(
                "why_answers", entry=f"*{result.answer_id}*", confidence=confidence, answer_at=answer_at
            )
        elif result.suggestions:
            entries = ", ".join(f"*{s}*" for s in result.suggestions)
            verdict = say("why_suggests", entries=entries, confidence=confidence, answer_at=answer_at)
        else:
            verdict = say("why_falls_back", confidence=confidence, answer_at=answer_at)
        lines = [say("why_title", question=question, language=result.lang), verdict]
        if not result.specific:
            lines.append(say("why_not_specific"))
        if result.ranked:
            best = result.ranked[0]
            lines.append(
                say(
                    "why_closest",
                    question=best.question,
                    entry=_name(best, kb, lang),
                    score=f"{best.score:.2f}",
                    signals=_signals(best, kb, lang),
                )
            )
            runners = result.ranked[1 : 1 + RUNNERS_UP]
            if runners:
                lines.append(say("why_runners_up"))
                lines += [
                    f"• {_name(m, kb, lang)} {m.score:.2f} ({_signals(m, kb, lang)}) — “{m.question}”"
                    for m in runners
                ]
            else:
                lines.append(say("why_no_runners_up"))
        else:
            lines.append(say("why_no_example"))
        if result.terms:
            lines.append(say("why_words", words=", ".join(f"`{t}`" for t in result.terms)))
        lines.append(say("why_advice"))
        return "\n".join(lines)


def _typed(command: AdminCommand) -> str:
    return command.name.replace("_", " ")


def tip_now_reply(outcomes: Sequence[TipOutcome], kb: KnowledgeBase, lang: str) -> str:
    """What `tip now` tells HR: counts per platform, each channel by name, and personal chats only
    counted (their ids point at people, and there may be hundreds)."""
    per_platform = Counter(o.target.platform for o in outcomes)
    counts = ", ".join(f"{platform} {n}" for platform, n in sorted(per_platform.items()))
    lines = [kb.say("tip_now_posted", lang, count=str(len(outcomes)), platforms=counts)]
    personal: Counter[tuple[str, str]] = Counter()
    for outcome in outcomes:
        if outcome.target.personal:
            personal[(outcome.target.platform, outcome.status)] += 1
            continue
        error = f" ({outcome.error})" if outcome.error else ""
        lines.append(
            f"• `{outcome.target.label}` [{outcome.target.lang}]: {outcome.tip_id} {outcome.status}{error}"
        )
    for platform in sorted({platform for platform, _ in personal}):
        statuses = ", ".join(f"{n} {status}" for (p, status), n in sorted(personal.items()) if p == platform)
        lines.append(kb.say("tip_now_personal", lang, platform=platform, statuses=statuses))
    return "\n".join(lines)


def _signals(match: Match, kb: KnowledgeBase, lang: str) -> str:
    """A score's two parts in HR's words: shared words, and resemblance to the entry's examples (beside
    the resemblance its own examples usually have: a question far below it is unlike what the entry is
    about)."""
    if match.entry_id == OUT_OF_SCOPE:
        return kb.say("why_signals_out_of_scope", lang, words=f"{match.words:.2f}")
    return kb.say(
        "why_signals",
        lang,
        words=f"{match.words:.2f}",
        resemblance=f"{match.resemblance:.2f}",
        usual=f"{match.usual:.2f}",
    )


def _name(match: Match, kb: KnowledgeBase, lang: str) -> str:
    if match.entry_id == OUT_OF_SCOPE:
        return kb.say("why_out_of_scope", lang)
    name = f"*{match.entry_id}*"
    return name if match.entry_id in kb.entries else kb.say("why_removed", lang, entry=name)
