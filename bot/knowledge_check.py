"""What `policybot kb check` and a live reload say about a knowledge base that *loads*: warnings only.

One rule decides what blocks a reload, for `kb check` and the running bot alike: the loader's errors
(structural problems: broken YAML, a missing field, an unknown id). Everything here is advice and never
blocks: examples that the other examples route to another entry (grouped per pair of entries, in HR's
words), answers not reviewed for a year, and how the bot would treat its own examples with the
confidence fitted on them.

When the previous version is known (a live reload), a pair of confusable entries is reported only if
one of them was changed and the change made it worse (more of the changed entries' examples confusable
than before: a pair that was as confusable already is `kb check`'s to list), and the advice points at
the change HR just made.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date

from bot.errors import Problem
from bot.knowledge import Entry, KnowledgeBase
from bot.matching import OUT_OF_SCOPE, Index
from bot.review import STALE_AFTER

SHOWN_EXAMPLES = 2  # example questions quoted per pair


def blocking(problems: list[Problem]) -> list[Problem]:
    """The problems that keep the previous version in service: the errors, nothing else."""
    return [p for p in problems if p.severity == "error"]


def changed(kb: KnowledgeBase, previous: KnowledgeBase | None) -> set[str] | None:
    """The ids of entries added or edited since `previous` (None: unknown, every entry counts)."""
    if previous is None:
        return None
    return {i for i, e in kb.entries.items() if _content(e) != _content(previous.entries.get(i))}


def _content(entry: Entry | None) -> object:
    if entry is None:
        return None
    return (
        dict(entry.title),
        {k: tuple(v) for k, v in entry.questions.items()},
        dict(entry.answer),
        entry.tags,
    )


def self_test(
    kb: KnowledgeBase,
    index: Index | None = None,
    *,
    previous: KnowledgeBase | None = None,
    previous_index: Index | None = None,
    today: date | None = None,
) -> list[Problem]:
    """Ask every example question without its own copy; group those the others route elsewhere.
    `previous` (and its index, if at hand): the version this one replaces, see the module's docstring."""
    index = index or Index(kb)
    touched = changed(kb, previous)
    pairs = _confused(index, touched)
    before: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    if previous is not None and touched:
        before = _confused(previous_index or Index(previous), touched)
    problems = [
        _confusable(kb, first, second, found, touched)
        for (first, second), found in sorted(pairs.items())
        if touched is None
        or ((first in touched or second in touched) and len(found) > len(before.get((first, second), ())))
    ]
    today = today or date.today()
    for entry in kb.entries.values():
        if entry.reviewed and today - entry.reviewed > STALE_AFTER:
            problems.append(
                Problem(
                    entry.file,
                    entry.line,
                    None,
                    entry.id,
                    f"last reviewed {entry.reviewed.isoformat()}, more than 12 months ago",
                    "review the answer and update 'reviewed'",
                    severity="warning",
                )
            )
    return problems


def _confused(index: Index, only: set[str] | None) -> dict[tuple[str, str], list[tuple[str, bool]]]:
    """Per pair of entries, the examples (of the entries in `only`, None: all) that the other examples
    route to the other entry of the pair, and whether they would be answered with it."""
    pairs: dict[tuple[str, str], list[tuple[str, bool]]] = defaultdict(list)
    for position, question in enumerate(index.questions):
        own = index.entry_ids[index.question_entry[position]]
        if own == OUT_OF_SCOPE or (only is not None and own not in only):
            continue  # (after a reload: only the examples of the entries HR changed are asked)
        _, _, result = index.observe(position)
        if result.answer_id is not None and result.answer_id != own:
            pairs[_pair(own, result.answer_id)].append((question, True))
        elif result.answer_id is None and result.suggestions and result.suggestions[0] != own:
            pairs[_pair(own, result.suggestions[0])].append((question, False))
    return pairs


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _confusable(
    kb: KnowledgeBase, first: str, second: str, found: list[tuple[str, bool]], touched: set[str] | None
) -> Problem:
    a, b = kb.entries[first], kb.entries[second]
    total = _examples(a) + _examples(b)
    answered = sum(wrong for _, wrong in found)
    shown = "; ".join(f"'{q}'" for q, _ in found[:SHOWN_EXAMPLES])
    message = (
        f"{len(found)} of {total} examples of '{first}' and '{second}' are confusable — the bot will offer "
        f"both"
    )
    if answered:
        message += f" (and answer {answered} of them with the other entry)"
    message += f", e.g. {shown}"
    # Point at the entry HR just changed when that is known; else at the one whose examples stray.
    if touched is not None and (first in touched) != (second in touched):
        entry = a if first in touched else b
        other = b if entry is a else a
        fix = (
            f"you changed '{entry.id}': its examples now read like those of '{other.id}'; give them the "
            f"words that set '{entry.id}' apart (or undo the change)"
        )
    else:
        strays = _owners(found, kb.entries)
        entry = a if strays.get(first, 0) >= strays.get(second, 0) else b
        fix = (
            "if they are one topic, merge them; if not, give the examples of each the words that set it "
            "apart (quoted examples first)"
        )
    line = entry.line_of(found[0][0]) if found[0][0] in entry.question_lines else entry.line
    return Problem(entry.file, line, None, entry.id, message, fix, severity="warning")


def _examples(entry: Entry) -> int:
    return sum(len(q) for q in entry.questions.values())


def _owners(found: list[tuple[str, bool]], entries: Mapping[str, Entry]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for question, _ in found:
        for entry in entries.values():
            if question in entry.question_lines:
                counts[entry.id] += 1
    return counts
