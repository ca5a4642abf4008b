"""HR admins' commands in the core; the chat round trips are in tests/adapters/test_admin.py."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.admin import Admin
from bot.conversation import Conversation
from bot.errors import KnowledgeError
from bot.knowledge import ADMIN_MESSAGE_KEYS
from bot.knowledge_loader import load_knowledge
from bot.store import TipStatus
from bot.tips import Target, TipOutcome
from tests.conftest import messages_yaml, write_kb

SHIPPED = Path(__file__).resolve().parents[2] / "knowledge"


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


def admin_messages_yaml() -> str:
    """messages_yaml() plus every admin sentence, marked so a test sees which one was used."""
    lines = [messages_yaml().rstrip("\n")]
    for key, placeholders in ADMIN_MESSAGE_KEYS.items():
        fields = " ".join("{" + p + "}" for p in placeholders)
        lines += [
            f"  {key}:",
            f'    en: "EN {key} {fields}"'.rstrip(),
            f'    nb: "NB {key} {fields}"'.rstrip(),
        ]
    return "\n".join(lines) + "\n"


async def test_admin_replies_are_hr_s_sentences_in_the_admin_s_language(tmp_path: Path) -> None:
    kb = await load_knowledge(write_kb(tmp_path / "knowledge", messages=admin_messages_yaml()))
    admin = Admin(frozenset({"UHR"}), Conversation(kb))

    why = await admin.run("why can I add my boss on fb?", "UHR", "nb")
    unavailable = await admin.run("reload", "UHR", "en")

    assert why is not None and why.splitlines()[0] == "NB why_title can I add my boss on fb? en"
    assert why.splitlines()[1].startswith("NB why_answers *friend-manager* ")
    assert why.splitlines()[-1] == "NB why_advice"
    assert unavailable == "EN admin_unavailable reload"


async def test_a_folder_without_the_admin_sentences_gets_the_shipped_wording(tiny_kb_dir: Path) -> None:
    shipped = await load_knowledge(SHIPPED)
    kb = await load_knowledge(tiny_kb_dir)  # messages_yaml() has none of them

    for key in ADMIN_MESSAGE_KEYS:
        assert kb.messages[key] == shipped.messages[key]
    assert kb.say("report_top", "nb") == "*Mest spurte emner*"


async def test_an_admin_sentence_with_a_wrong_placeholder_is_an_error(tmp_path: Path) -> None:
    messages = admin_messages_yaml().replace('"EN why_words {words}"', '"EN why_words {word}"')

    with pytest.raises(KnowledgeError) as failure:
        await load_knowledge(write_kb(tmp_path / "knowledge", messages=messages))

    assert "message 'why_words' (en) uses unknown placeholder {word}" in str(failure.value)
