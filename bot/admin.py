"""HR admins' chat commands: `reload`, `report`, `tip now` and `why <question>`.

Admins are listed in `POLICYBOT_ADMINS` (Slack user ids, Teams AAD object ids). Anyone else who types
`reload`, `report` or `tip now` gets the `not_allowed` sentence and nothing happens. `why …` is the one
exception: for someone who is not an admin it is an ordinary question ("why can't I post photos from
work?" is a fair thing for an employee to ask), answered as usual and never diagnosed.

Platform-neutral: the adapters parse nothing themselves; they pass the text and who typed it, and
render the markdown that comes back.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.conversation import Conversation, clean
from bot.errors import PolicybotError
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
            return f"⚠️ `{command.name.replace('_', ' ')}` failed: {exc}"

    async def _run(self, command: AdminCommand, lang: str) -> str:
        if command.name == "reload":
            return await self._reload(lang)
        if command.name == "tip_now":
            return await self._tip_now()
        if command.name == "report":
            return await self._report(lang)
        return self.why(command.argument)

    async def _reload(self, lang: str) -> str:
        if self.reloader is None:
            return "⚠️ Reloading is not available in this process."
        result = await self.reloader.reload("reload command")
        return self.reloader.message(result, lang)

    async def _tip_now(self) -> str:
        if self.tips is None:
            return "⚠️ Tips need the database; none is configured in this process."
        outcomes = await self.tips.post_now()
        if not outcomes:
            return (
                "No tip targets: set POLICYBOT_TIP_SLACK_CHANNELS, or install the bot in a Teams team "
                "(see `policybot tips preview`)."
            )
        return tip_now_reply(outcomes)

    async def _report(self, lang: str) -> str:
        if self.store is None:
            return "⚠️ The report needs the database; none is configured in this process."
        from bot.report import summary  # the insights module is only needed here

        return await summary(self.store, self.conversation.kb, lang, index=self.conversation.index)

    def why(self, question: str) -> str:
        """Why a question gets the reply it gets: the verdict, the matching example and the runners-up."""
        result = self.conversation.match(question)
        kb = self.conversation.kb
        if result.answer_id is not None:
            verdict = f"answers with *{result.answer_id}*"
        elif result.suggestions:
            verdict = "offers “did you mean”: " + ", ".join(f"*{s}*" for s in result.suggestions)
        else:
            verdict = "does not answer (fallback: how to reach HR)"
        lines = [
            f"*why* “{question}” ({result.lang})",
            f"The bot {verdict} — {result.confidence:.0%} sure; it answers outright from "
            f"{result.answer_at:.0%} (answer_when_sure, fitted on this knowledge base's own examples).",
        ]
        if not result.specific:
            lines.append(
                "It is never answered outright: its words are ones nearly every entry uses, so it could "
                "mean several of them."
            )
        if result.ranked:
            best = result.ranked[0]
            lines.append(
                f"Closest example: “{best.question}” in {_name(best, kb.entries)} (score {best.score:.2f}: "
                f"{_signals(best)})"
            )
            runners = result.ranked[1 : 1 + RUNNERS_UP]
            if runners:
                lines.append("Runners-up:")
                lines += [
                    f"• {_name(m, kb.entries)} {m.score:.2f} ({_signals(m)}) — “{m.question}”"
                    for m in runners
                ]
            else:
                lines.append("Runners-up: none (no other entry shares a word with it).")
        else:
            lines.append("No example question shares a word with it.")
        if result.terms:
            lines.append("Words understood: " + ", ".join(f"`{t}`" for t in result.terms))
        lines.append(
            "To change the outcome, add the question (or its words) as an example of the right entry."
        )
        return "\n".join(lines)


def tip_now_reply(outcomes: Sequence[TipOutcome]) -> str:
    """What `tip now` tells HR: counts per platform, each channel by name, and personal chats only
    counted (their ids point at people, and there may be hundreds)."""
    per_platform = Counter(o.target.platform for o in outcomes)
    counts = ", ".join(f"{platform} {n}" for platform, n in sorted(per_platform.items()))
    lines = [f"*Tip of the day, posted now* ({len(outcomes)} target(s): {counts}):"]
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
        lines.append(f"• {platform} personal chats: {statuses}")
    return "\n".join(lines)


def _signals(match: Match) -> str:
    """A score's two parts in HR's words: shared words, and resemblance to the entry's examples."""
    if match.entry_id == OUT_OF_SCOPE:
        return f"words shared with an out-of-scope example {match.words:.2f}"
    return f"words shared with the entry {match.words:.2f}, resembles its examples {match.resemblance:.2f}"


def _name(match: Match, entries: Any) -> str:
    if match.entry_id == OUT_OF_SCOPE:
        return "*(out of scope)*"
    return f"*{match.entry_id}*" if match.entry_id in entries else f"*{match.entry_id}* (removed)"
