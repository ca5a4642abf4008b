"""HR admins' commands in the core; the chat round trips are in tests/adapters/test_admin.py."""

from __future__ import annotations

from bot.admin import Admin
from bot.conversation import Conversation


def test_why_says_a_vague_question_is_not_answered_outright_and_why(all_about_work: Conversation) -> None:
    lines = Admin(frozenset({"UHR"}), all_about_work).why("can I post about work?").splitlines()

    assert lines[1].startswith("The bot offers “did you mean”: *photos*")
    assert lines[2] == (
        "It is never answered outright: its words are ones nearly every entry uses, so it could mean "
        "several of them."
    )


def test_why_says_nothing_of_the_kind_for_a_specific_question(all_about_work: Conversation) -> None:
    explanation = Admin(frozenset({"UHR"}), all_about_work).why("can I post about salaries from work?")

    assert "The bot answers with *salaries*" in explanation
    assert "never answered outright" not in explanation
