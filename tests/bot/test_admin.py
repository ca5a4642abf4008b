"""HR admins' commands in the core; the chat round trips are in tests/adapters/test_admin.py."""

from __future__ import annotations

from datetime import date

from bot.admin import Admin
from bot.conversation import Conversation
from bot.store import TipStatus
from bot.tips import Target, TipOutcome


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


class FakeTips:
    """Stands in for the TipScheduler: `tip now` only needs its outcomes."""

    def __init__(self, outcomes: list[TipOutcome]) -> None:
        self.outcomes = outcomes

    async def post_now(self) -> list[TipOutcome]:
        return self.outcomes


async def test_tip_now_names_channels_and_only_counts_personal_chats(all_about_work: Conversation) -> None:
    day = date(2028, 5, 15)
    outcomes = [
        TipOutcome(Target("slack", "C-general", "en"), day, "badges", TipStatus.POSTED),
        TipOutcome(Target("teams", "19:hr@thread.tacv2", "nb"), day, "screens", TipStatus.POSTED),
        TipOutcome(
            Target("teams", "a:1PersonalChatOfKari", "nb", personal=True), day, "badges", TipStatus.POSTED
        ),
        TipOutcome(
            Target("teams", "a:1PersonalChatOfOla", "en", personal=True),
            day,
            "badges",
            TipStatus.FAILED,
            "Teams refused (HTTP 403) for teams:personal#12345678",
        ),
    ]
    admin = Admin(frozenset({"UHR"}), all_about_work, tips=FakeTips(outcomes))  # type: ignore[arg-type]

    reply = await admin.run("tip now", "UHR", "en")

    assert reply is not None
    assert "PersonalChatOf" not in reply
    assert reply.splitlines() == [
        "*Tip of the day, posted now* (4 target(s): slack 1, teams 3):",
        "• `slack:C-general` [en]: badges posted",
        "• `teams:19:hr@thread.tacv2` [nb]: screens posted",
        "• teams personal chats: 1 failed, 1 posted",
    ]
