"""HR's insights report, built from a real store (SQLite file, and PostgreSQL) filled the way the bot
fills it: questions with their outcome, 👍/👎 votes and picked "did you mean" suggestions. The file
formats are tested in test_report_formats.py."""

from __future__ import annotations

import random
import string
import time
from datetime import date
from pathlib import Path

import pytest

from bot.knowledge import KnowledgeBase
from bot.knowledge_loader import load_knowledge
from bot.report import group_similar, render_summary, summary
from bot.store import Store
from tests.bot.conftest import ANSWER, FALLBACK, Clock, ask, fill, report_of


def paste(file: Path, after_line: int, text: str) -> None:
    """What HR does in their editor: paste `text` after line `after_line` of `file`."""
    lines = file.read_text(encoding="utf-8").splitlines()
    file.write_text("\n".join([*lines[:after_line], text, *lines[after_line:]]) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------- grouping


def test_near_identical_questions_form_one_group_and_different_ones_do_not() -> None:
    questions = [
        "can i post on tiktok about work",
        "what is the dress code for the christmas party",
        "Can I post on TikTok about work?",
        "can i post on tik tok about work??",
        "Dress code for the Christmas party?",
        "can I wear the company logo at a protest",
        "can I wear the company logo at a demonstration",
    ]

    groups = group_similar(questions)

    assert groups == [[0, 2, 3], [1, 4], [5], [6]]  # biggest first; the two logo questions differ


def test_grouping_thousands_of_questions_is_quick() -> None:
    rng = random.Random(6)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 9))) for _ in range(3000)]
    topics = [" ".join(rng.sample(words, 4)) for _ in range(1500)]
    typos = [t[:3] + t[4:] for t in topics]  # one letter missing
    questions = [t for t in topics for _ in range(2)] + typos

    started = time.perf_counter()
    groups = group_similar(questions)
    elapsed = time.perf_counter() - started

    assert len(groups) == 1500 and all(len(g) == 3 for g in groups)
    assert elapsed < 10  # typically well under a second; the bound only catches a quadratic Python loop


# ----------------------------------------------------------------------------------------- the report


@pytest.mark.usefixtures("tiny_kb_dir")
async def test_the_report_counts_topics_per_week_and_groups_what_was_not_answered(
    store: Store, kb: KnowledgeBase, clock: Clock
) -> None:
    await fill(store, clock)

    report = await report_of(store, kb, clock)

    assert report.weeks == (date(2028, 5, 1), date(2028, 5, 8), date(2028, 5, 15))
    assert [(t.entry_id, t.weekly) for t in report.topics] == [
        ("friend-manager", (1, 3, 0)),
        ("workplace-photos", (0, 0, 2)),
    ]
    assert report.weekly_total == (2, 6, 7)
    assert report.weekly_unanswered == (1, 3, 5)
    assert report.outcomes == {"answer": 6, "suggestions": 2, "fallback": 7}
    assert [(g.question, g.count) for g in report.gaps[:2]] == [
        ("can i post on tiktok about work", 3),
        ("what is the dress code for the christmas party", 2),
    ]
    tiktok = report.gaps[0]
    assert (tiktok.fallback, tiktok.suggestions) == (2, 1)
    assert set(tiktok.variants) == {"Can I post on TikTok about work?", "can i post on tik tok about work??"}
    assert tiktok.closest == "workplace-photos" and tiktok.closest_title == "Photos and video at work"
    assert {g.count for g in report.gaps[2:]} == {1}
    assert len(report.gaps) == 6


async def test_helpful_ratio_per_answer_least_helpful_first(
    store: Store, kb: KnowledgeBase, clock: Clock
) -> None:
    await fill(store, clock)

    report = await report_of(store, kb, clock)

    assert [(r.entry_id, r.helpful, r.unhelpful, r.ratio) for r in report.ratings] == [
        ("friend-manager", 1, 3, 0.25),
        ("workplace-photos", 2, 0, 1.0),
    ]


async def test_picked_suggestions_become_candidate_examples_ready_to_paste(
    store: Store, kb: KnowledgeBase, clock: Clock
) -> None:
    await fill(store, clock)

    report = await report_of(store, kb, clock)

    # The Norwegian pick is already an example, and the removed entry is gone: neither is a candidate.
    assert [(c.entry_id, c.lang, c.questions) for c in report.candidates] == [
        ("friend-manager", "en", (("can i friend my boss on snapchat", 2),)),
        ("workplace-photos", "en", (("may I film in the canteen", 1),)),
    ]
    friend = report.candidates[0]
    entry = kb.entries["friend-manager"]
    assert friend.after_line == entry.line_of("is it ok to follow my boss on instagram")
    paste(Path(entry.file), friend.after_line, friend.yaml())
    reloaded = await load_knowledge(Path(entry.file).parent)  # one copy-paste, and it loads
    assert "can i friend my boss on snapchat" in reloaded.entries["friend-manager"].questions["en"]


async def test_since_leaves_out_older_questions_votes_and_picks(
    store: Store, kb: KnowledgeBase, clock: Clock
) -> None:
    await fill(store, clock)

    report = await report_of(store, kb, clock, since=date(2028, 5, 8))

    assert report.weeks == (date(2028, 5, 8), date(2028, 5, 15))
    assert report.topics[0].weekly == (3, 0)
    assert report.gaps[0].count == 2  # the tiktok question of 2 May is before the period


async def test_the_chat_summary_is_short_and_in_the_asked_language(
    store: Store, kb: KnowledgeBase, clock: Clock
) -> None:
    await fill(store, clock)

    text = await summary(store, kb, "nb", since=date(2028, 5, 1))

    assert text.startswith("*policybot-rapport* (siden 2028-05-01): 15 spørsmål, 6 (40%) besvart")
    assert "• Legge til lederen din i sosiale medier: 4" in text
    assert "• Legge til lederen din i sosiale medier: 1 👍 / 3 👎 (25%)" in text
    assert '1. "can i post on tiktok about work" ×3 (nærmest: workplace-photos)' in text
    assert len([line for line in text.splitlines() if line[:2].rstrip(".").isdigit()]) == 5
    assert "U0SECRET01" not in text and "example.com" not in text
    assert len(text) < 1500


async def test_an_entry_is_closest_to_an_unanswered_question_only_when_it_is_a_plausible_match(
    store: Store, kb: KnowledgeBase, clock: Clock
) -> None:
    clock.at(2028, 5, 16, 10)
    await ask(store, "customer complaint procedure", FALLBACK)  # shares one answer word with photos
    await ask(store, "what does my colleague earn", FALLBACK)  # a little more than that

    report = await report_of(store, kb, clock)

    closest = {g.question: (g.closest, round(g.score, 2)) for g in report.gaps}
    assert closest == {
        "customer complaint procedure": (None, 0.0),
        "what does my colleague earn": (None, 0.0),
    }


async def test_the_report_names_its_knowledge_base_and_the_logged_entries_it_does_not_have(
    store: Store, kb: KnowledgeBase, clock: Clock
) -> None:
    clock.at(2028, 5, 16, 10)
    await ask(store, "how many vacation days do I have?", ANSWER, "vacation-days")  # HR's own entry
    await ask(store, "Can I add my boss on Facebook?", ANSWER, "friend-manager")

    report = await report_of(store, kb, clock)

    assert report.knowledge == f"{kb.source_dir}, version {kb.version}"
    assert report.unknown_entries == ("vacation-days",)


async def test_the_chat_summary_lists_the_answers_due_for_review(
    store: Store, kb: KnowledgeBase, clock: Clock
) -> None:
    report = await report_of(store, kb, clock)  # 2028-05-17: friend-manager was reviewed 2026-11-01

    text = render_summary(report, kb, "nb")

    assert "*Bør gjennomgås* (sist gjennomgått for mer enn 12 måneder siden)" in text
    assert "• Adding your manager on social media (`friend-manager`): 2026-11-01, `entries.yaml:2`" in text
