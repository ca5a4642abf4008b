"""What employees ask, and what the knowledge base does not answer yet: HR's insights report.

`build_report` reads the store (questions, feedback, picked suggestions; none of it with identities)
and the current knowledge base, and returns a `Report`; `bot.report_formats.render(report, fmt)` writes
it as Markdown, CSV or one self-contained HTML page with inline SVG charts. `summary` is the chat-sized
version shown by the admin command `/policy report`.

Sections:
- questions per topic per week (a topic is the entry that answered; "not answered" are the questions
  that got "did you mean" suggestions or the fallback);
- helpful / unhelpful votes per answer, least helpful first;
- unanswered and low-confidence questions, near-identical ones grouped into one line with a count,
  most asked first, each with the entry it is closest to;
- candidate example questions: what people typed before picking a "did you mean" suggestion, as YAML
  lines HR can paste under the entry's `questions:`.

Grouping: each question is masked (below), folded like the matcher folds it, stemmed, stripped of
stop words and its words sorted; two questions are near-identical when those keys have a Levenshtein-
based similarity (rapidfuzz `ratio`) of at least `SIMILAR_AT`. Groups are formed greedily from the most
asked phrasing down (leader clustering) over a similarity matrix computed in blocks with
`rapidfuzz.process.cdist`, so thousands of distinct questions take well under a second per thousand.

Privacy: the store never holds who asked, and question text is masked (`bot.privacy.mask`) before it
is stored; it is masked again here, so that rows written before that still show no one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Protocol

import numpy as np
from rapidfuzz import fuzz, process

from bot.conversation import ReplyKind
from bot.knowledge import KnowledgeBase
from bot.matching import OUT_OF_SCOPE, STOPWORDS, Index, fold, stem
from bot.privacy import mask
from bot.review import StaleEntry, stale_entries, stale_lines
from bot.store import LoggedPick, LoggedQuestion

log = logging.getLogger(__name__)

SIMILAR_AT = 85  # 0..100: keys at least this similar are "the same question" (see the module docstring)
BLOCK = 512  # rows of the similarity matrix computed at once (memory: BLOCK x distinct questions bytes)
MAX_VARIANTS = 3  # other phrasings shown per group
# An entry is named "closest" to an unanswered question only if the bot itself would answer with it or
# offer it (its confidence fitted on this knowledge base); below that the closeness is noise (a score of
# 0.06 shares a stop word or two), and "no close entry" tells HR the topic is missing.
NOT_ANSWERED = (str(ReplyKind.SUGGESTIONS), str(ReplyKind.FALLBACK))

# ------------------------------------------------------------------------------------------ grouping

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(fold(word) for words in STOPWORDS.values() for word in words)


def similarity_key(text: str) -> str:
    """What is compared to decide that two questions are the same: content words, stemmed, sorted."""
    words = [stem(w) for w in _WORD.findall(fold(text))]
    content = [w for w in words if w not in _STOP]
    return " ".join(sorted(content or words))


def group_similar(texts: Sequence[str], *, threshold: float = SIMILAR_AT) -> list[list[int]]:
    """Indices of `texts` grouped so that near-identical texts share a group; biggest group first.

    Greedy leader clustering: the most frequent distinct key leads a group and takes every ungrouped
    key similar to it; then the next ungrouped key, and so on. Deterministic for the same input.
    """
    keys = [similarity_key(t) for t in texts]
    counts = Counter(keys)
    distinct = sorted(counts, key=lambda k: (-counts[k], k))
    position = {key: i for i, key in enumerate(distinct)}
    group_of = np.full(len(distinct), -1, dtype=np.int64)
    leaders = 0
    for start in range(0, len(distinct), BLOCK):
        block = distinct[start : start + BLOCK]
        # Similarities of this block with every key; below the threshold reads as 0.
        scores = process.cdist(
            block, distinct, scorer=fuzz.ratio, score_cutoff=threshold, dtype=np.uint8, workers=-1
        )
        for offset in range(len(block)):
            row = start + offset
            if group_of[row] >= 0:
                continue
            similar = np.flatnonzero(scores[offset])
            similar = similar[group_of[similar] < 0]
            group_of[similar] = leaders
            group_of[row] = leaders
            leaders += 1
    members: list[list[int]] = [[] for _ in range(leaders)]
    for index, key in enumerate(keys):
        members[int(group_of[position[key]])].append(index)
    return sorted(members, key=lambda m: (-len(m), m[0]))


# ----------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class TopicTrend:
    """How often one entry answered, per week of `Report.weeks`."""

    entry_id: str
    title: str
    weekly: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.weekly)


@dataclass(frozen=True)
class Rating:
    entry_id: str
    title: str
    helpful: int
    unhelpful: int

    @property
    def ratio(self) -> float:
        """Share of helpful votes, 0..1."""
        votes = self.helpful + self.unhelpful
        return self.helpful / votes if votes else 0.0


@dataclass(frozen=True)
class Gap:
    """A group of near-identical questions the bot did not answer outright."""

    question: str  # the most asked phrasing, masked
    count: int
    fallback: int  # how many of them got the "I don't know" fallback
    suggestions: int  # how many got "did you mean"
    variants: tuple[str, ...]  # other phrasings, most asked first
    lang: str
    closest: str | None  # the entry it is closest to, if any
    closest_title: str | None
    score: float  # the matcher's score for the closest entry, 0..1


@dataclass(frozen=True)
class Candidate:
    """Questions people typed before picking an entry from "did you mean": examples HR may add."""

    entry_id: str
    title: str
    lang: str
    questions: tuple[tuple[str, int], ...]  # (masked question, times picked), most picked first
    file: str
    after_line: int  # paste after this line of `file` (the entry's last example in `lang`)
    indent: str

    def yaml(self) -> str:
        """YAML list lines ready to paste under the entry's `questions:` → `lang:` list."""
        return "\n".join(f"{self.indent}- {json.dumps(q, ensure_ascii=False)}" for q, _ in self.questions)


@dataclass(frozen=True)
class Report:
    generated: datetime
    since: date | None
    retention_days: int | None
    weeks: tuple[date, ...]  # the Monday of each week, oldest first
    weekly_total: tuple[int, ...]
    weekly_answered: tuple[int, ...]
    outcomes: dict[str, int]  # "answer" / "suggestions" / "fallback" -> count
    topics: tuple[TopicTrend, ...]  # most asked first
    ratings: tuple[Rating, ...]  # least helpful first
    gaps: tuple[Gap, ...]  # most asked first
    candidates: tuple[Candidate, ...]
    stale: tuple[StaleEntry, ...] = ()  # entries due for review (last reviewed over a year ago)
    knowledge: str = ""  # the knowledge folder the titles and paste targets come from, and its version
    unknown_entries: tuple[str, ...] = ()  # entry ids in the log that this knowledge base does not have

    @property
    def not_answered(self) -> int:
        """Questions that got "did you mean" suggestions or the fallback: what every table calls
        "not answered"."""
        return self.outcomes["suggestions"] + self.outcomes["fallback"]

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    @property
    def weekly_unanswered(self) -> tuple[int, ...]:
        return tuple(t - a for t, a in zip(self.weekly_total, self.weekly_answered, strict=True))


class InsightsStore(Protocol):
    """The store reads the report needs (bot.store.Store has them)."""

    retention_days: int

    async def question_log(self, *, since: datetime | None = None) -> list[LoggedQuestion]: ...
    async def pick_log(self, *, since: datetime | None = None) -> list[LoggedPick]: ...
    async def feedback_counts(self, *, since: date | None = None) -> dict[str, tuple[int, int]]: ...


# -------------------------------------------------------------------------------------------- building


def _title(kb: KnowledgeBase, entry_id: str, lang: str) -> str:
    entry = kb.entries.get(entry_id)
    if entry is None:
        return f"{entry_id} (no longer in the knowledge base)"
    return entry.title.get(lang) or next(iter(entry.title.values()), entry_id)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def build_report(
    store: InsightsStore,
    kb: KnowledgeBase,
    *,
    since: date | None = None,
    lang: str = "en",
    tz: tzinfo = UTC,
    index: Index | None = None,
    now: datetime | None = None,
) -> Report:
    """Everything the report shows, from questions asked on or after `since` (a day in `tz`)."""
    now = now or datetime.now(UTC)
    start = datetime.combine(since, time(), tz).astimezone(UTC) if since else None
    asked = await store.question_log(since=start)
    picks = await store.pick_log(since=start)
    votes = await store.feedback_counts(since=since)
    index = index or Index(kb)

    # The chart starts at the first question (not at a `since` long before any was logged).
    first_day = asked[0].asked_at.astimezone(tz).date() if asked else since or now.astimezone(tz).date()
    week = _monday(first_day)
    last_asked = asked[-1].asked_at.astimezone(tz).date() if asked else first_day
    last = _monday(max(now.astimezone(tz).date(), first_day, last_asked))
    weeks: list[date] = []
    while week <= last:
        weeks.append(week)
        week += timedelta(days=7)
    slot = {w: i for i, w in enumerate(weeks)}
    total = [0] * len(weeks)
    answered = [0] * len(weeks)
    per_topic: dict[str, list[int]] = defaultdict(lambda: [0] * len(weeks))
    outcomes: Counter[str] = Counter()
    unanswered: list[LoggedQuestion] = []
    for record in asked:
        i = slot[_monday(record.asked_at.astimezone(tz).date())]
        outcomes[record.outcome] += 1
        if record.outcome in NOT_ANSWERED:
            unanswered.append(record)
        total[i] += 1
        if record.outcome == str(ReplyKind.ANSWER) and record.entry_id:
            answered[i] += 1
            per_topic[record.entry_id][i] += 1
    topics = sorted(
        (TopicTrend(e, _title(kb, e, lang), tuple(c)) for e, c in per_topic.items()),
        key=lambda t: (-t.total, t.entry_id),
    )
    ratings = sorted(
        (Rating(e, _title(kb, e, lang), yes, no) for e, (yes, no) in votes.items() if yes + no),
        key=lambda r: (r.ratio, -(r.helpful + r.unhelpful), r.entry_id),
    )
    gaps = await asyncio.to_thread(_gaps, unanswered, kb, index, lang)
    candidates = await asyncio.to_thread(_candidates, picks, kb, lang)
    logged = {r.entry_id for r in asked if r.outcome == str(ReplyKind.ANSWER) and r.entry_id}
    logged |= set(votes) | {p.entry_id for p in picks}
    return Report(
        generated=now,
        since=since,
        retention_days=getattr(store, "retention_days", None),
        weeks=tuple(weeks),
        weekly_total=tuple(total),
        weekly_answered=tuple(answered),
        outcomes={kind: outcomes[kind] for kind in ("answer", "suggestions", "fallback")},
        topics=tuple(topics),
        ratings=tuple(ratings),
        gaps=tuple(gaps),
        candidates=tuple(candidates),
        stale=tuple(stale_entries(kb, now.astimezone(tz).date(), lang)),
        knowledge=f"{kb.source_dir or 'the knowledge base'}, version {kb.version}",
        unknown_entries=tuple(sorted(logged - set(kb.entries))),
    )


def _gaps(records: list[LoggedQuestion], kb: KnowledgeBase, index: Index, lang: str) -> list[Gap]:
    masked = [mask(r.question) for r in records]
    gaps: list[Gap] = []
    for members in group_similar(masked):
        phrasings = Counter(masked[i] for i in members)
        ordered = sorted(phrasings, key=lambda q: -phrasings[q])  # ties: the first asked
        leader = next(records[i] for i in members if masked[i] == ordered[0])
        result = index.match(leader.question, lang=leader.lang)
        best = next(
            (m for m in result.ranked if m.entry_id != OUT_OF_SCOPE and m.entry_id in kb.entries), None
        )
        if result.answer_id is None and not result.suggestions:
            best = None  # not even a plausible suggestion: the closeness is noise
        gaps.append(
            Gap(
                question=ordered[0],
                count=len(members),
                fallback=sum(records[i].outcome == str(ReplyKind.FALLBACK) for i in members),
                suggestions=sum(records[i].outcome == str(ReplyKind.SUGGESTIONS) for i in members),
                variants=tuple(ordered[1 : 1 + MAX_VARIANTS]),
                lang=leader.lang,
                closest=best.entry_id if best else None,
                closest_title=_title(kb, best.entry_id, lang) if best else None,
                score=best.score if best else 0.0,
            )
        )
    return gaps


def _candidates(picks: list[LoggedPick], kb: KnowledgeBase, lang: str) -> list[Candidate]:
    by_target: dict[tuple[str, str], list[str]] = defaultdict(list)
    for pick in picks:
        if pick.entry_id in kb.entries and pick.question.strip():
            by_target[(pick.entry_id, pick.lang)].append(mask(pick.question))
    lines: dict[str, list[str]] = {}
    candidates: list[Candidate] = []
    for (entry_id, question_lang), texts in sorted(by_target.items()):
        entry = kb.entries[entry_id]
        examples = entry.questions.get(question_lang, ())
        known = {similarity_key(q) for qs in entry.questions.values() for q in qs}
        found: list[tuple[str, int]] = []
        for members in group_similar(texts):
            phrasing = Counter(texts[i] for i in members).most_common(1)[0][0]
            if similarity_key(phrasing) not in known:
                found.append((phrasing, len(members)))
        if not found:
            continue
        after = max((entry.line_of(q) for q in examples), default=entry.line)
        indent = _indent_of(lines, entry.file, after) if examples else "        "
        candidates.append(
            Candidate(
                entry_id, _title(kb, entry_id, lang), question_lang, tuple(found), entry.file, after, indent
            )
        )
    return sorted(candidates, key=lambda c: (-sum(n for _, n in c.questions), c.entry_id, c.lang))


def _indent_of(cache: dict[str, list[str]], file: str, line: int) -> str:
    """The indentation of line `line` of `file`, so pasted examples line up with the existing ones."""
    if file not in cache:
        try:
            cache[file] = Path(file).read_text(encoding="utf-8").splitlines()
        except OSError:
            cache[file] = []
    text = cache[file][line - 1] if 0 < line <= len(cache[file]) else ""
    return text[: len(text) - len(text.lstrip())] if text.lstrip().startswith("-") else "        "


# ------------------------------------------------------------------------------------ chat summary

_CHAT_SPECIAL = re.compile(r"[*_~`>]")


def pct(part: int, whole: int) -> str:
    """`part` as a whole percentage of `whole` ("–" when `whole` is 0): how the chat summary and every
    file format (`bot.report_formats`) show a share."""
    return f"{100 * part / whole:.0f}%" if whole else "–"


def _chat(text: str, limit: int = 120) -> str:
    text = _CHAT_SPECIAL.sub("", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_summary(report: Report, kb: KnowledgeBase, lang: str, *, top: int = 5) -> str:
    """The chat-sized report, in `lang`, with the sentences from messages.yaml."""

    def say(key: str, **values: str) -> str:
        return kb.say(key, lang, **values)

    period = say("report_since", date=report.since.isoformat()) if report.since else say("report_all")
    answered = f"{report.outcomes['answer']} ({pct(report.outcomes['answer'], report.total)})"
    lines = [say("report_title", period=period, total=str(report.total), answered=answered), ""]
    lines.append(say("report_top"))
    lines += [f"• {_chat(t.title)}: {t.total}" for t in report.topics[:top]] or [f"• {say('report_none')}"]
    worst = [r for r in report.ratings if r.unhelpful][:3]
    lines += ["", say("report_worst")]
    lines += [f"• {_chat(r.title)}: {r.helpful} 👍 / {r.unhelpful} 👎 ({r.ratio:.0%})" for r in worst] or [
        f"• {say('report_none')}"
    ]
    lines += ["", say("report_gaps")]
    for number, gap in enumerate(report.gaps[:top], start=1):
        closest = f" ({say('report_closest', entry=gap.closest)})" if gap.closest else ""
        lines.append(f'{number}. "{_chat(gap.question)}" ×{gap.count}{closest}')
    if not report.gaps:
        lines.append(f"• {say('report_none')}")
    if report.stale:
        lines += ["", say("report_stale"), *stale_lines(list(report.stale), limit=top)]
    lines += ["", say("report_more")]
    return "\n".join(lines)


async def summary(
    store: InsightsStore,
    kb: KnowledgeBase,
    lang: str,
    *,
    since: date | None = None,
    index: Index | None = None,
) -> str:
    """A chat-sized Markdown summary for `/policy report`: top topics, worst-rated answers, top gaps."""
    report = await build_report(store, kb, since=since, lang=lang, index=index)
    return render_summary(report, kb, lang)
