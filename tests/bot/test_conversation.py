"""Conversations with the core: a Message in, a Reply out, whatever people type."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.conversation import Conversation, Message, Recorder, ReplyKind
from bot.knowledge_loader import load_knowledge
from tests.conftest import ENTRIES, write_kb


class Notebook(Recorder):
    """Keeps what the conversation records, to check that no identity is in it."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    async def record_question(self, *args: object) -> None:
        self.calls.append(("question", *args))

    async def record_feedback(self, *args: object) -> None:
        self.calls.append(("feedback", *args))

    async def record_suggestion_pick(self, *args: object) -> None:
        self.calls.append(("pick", *args))


@pytest.fixture
async def notebook() -> Notebook:
    return Notebook()


@pytest.fixture
async def bot(tiny_kb_dir: Path, notebook: Notebook) -> Conversation:
    return Conversation(await load_knowledge(tiny_kb_dir), recorder=notebook)


async def test_an_employee_asks_in_english_and_gets_the_answer_with_its_footer(
    bot: Conversation, notebook: Notebook
) -> None:
    reply = await bot.handle(Message("Can I add my boss on fb?", who="U123", where="D1"))

    assert reply.kind is ReplyKind.ANSWER and reply.lang == "en"
    assert reply.entry_id == "friend-manager"
    assert reply.text.startswith("Yes, you may")
    assert reply.title == "Adding your manager on social media"
    assert (
        reply.footer == "EN footer_source Guidelines 2.1 · EN footer_owner HR · EN footer_reviewed 2026-11-01"
    )
    assert [c.entry_id for c in reply.related] == ["workplace-photos"]
    assert reply.labels["feedback_yes"] == "EN feedback_yes"
    await bot.drain()
    [call] = notebook.calls
    assert call[:3] == ("question", "Can I add my boss on fb?", "en")
    assert "U123" not in call and "D1" not in call


async def test_a_norwegian_question_is_answered_in_norwegian(bot: Conversation) -> None:
    reply = await bot.handle(Message("må jeg godta venneforespørsel fra sjefen?", lang_hint="en-US"))

    assert (reply.kind, reply.lang, reply.entry_id) == (ReplyKind.ANSWER, "nb", "friend-manager")
    assert reply.text.startswith("Ja, det kan du")
    assert reply.links == ()


async def test_an_unclear_question_gets_did_you_mean_choices(bot: Conversation) -> None:
    reply = await bot.handle(Message("my boss in photos"))

    assert reply.kind is ReplyKind.SUGGESTIONS
    assert reply.text == "EN did_you_mean"
    assert {c.entry_id for c in reply.choices} == {"friend-manager", "workplace-photos"}
    assert reply.question == "my boss in photos"


async def test_picking_a_suggestion_answers_it_and_keeps_the_question_for_hr(
    bot: Conversation, notebook: Notebook
) -> None:
    reply = await bot.answer_entry("workplace-photos", "nb", question="sjefen min på bilder")

    assert reply.kind is ReplyKind.ANSWER and reply.text.startswith("Sjekk at ingen")
    assert reply.links[0].url == "https://intranet.example.com/photos"
    assert notebook.calls == [("pick", "sjefen min på bilder", "workplace-photos", "nb")]


async def test_an_entry_removed_since_the_buttons_were_sent_shows_the_topics(bot: Conversation) -> None:
    reply = await bot.answer_entry("no-such-entry", "en")

    assert reply.kind is ReplyKind.TOPICS


async def test_out_of_scope_gets_an_honest_fallback_with_the_way_to_hr(bot: Conversation) -> None:
    reply = await bot.handle(Message("how do I reset my password"))

    assert reply.kind is ReplyKind.FALLBACK
    assert reply.text == "EN fallback EN hr_contact"
    assert reply.entry_id is None


async def test_the_configured_hr_contact_replaces_the_default_wording(tiny_kb_dir: Path) -> None:
    bot = Conversation(await load_knowledge(tiny_kb_dir), hr_contact="write to hr@example.no")

    reply = await bot.handle(Message("hvor kan jeg parkere sykkelen?"))

    assert (reply.kind, reply.lang) == (ReplyKind.FALLBACK, "nb")
    assert reply.text == "NB fallback write to hr@example.no"


@pytest.mark.parametrize(
    ("typed", "kind", "lang"),
    [
        ("help", ReplyKind.HELP, "en"),
        ("Hjelp!", ReplyKind.HELP, "nb"),
        ("tip", ReplyKind.TIP, "en"),
        ("dagens tips", ReplyKind.TIP, "nb"),
        ("topics", ReplyKind.TOPICS, "en"),
        ("emner", ReplyKind.TOPICS, "nb"),
        ("/help", ReplyKind.HELP, "en"),
    ],
)
async def test_commands_work_in_both_languages(
    bot: Conversation, typed: str, kind: ReplyKind, lang: str
) -> None:
    reply = await bot.handle(Message(typed))

    assert (reply.kind, reply.lang) == (kind, lang)


async def test_an_ambiguous_command_follows_the_platform_language(bot: Conversation) -> None:
    reply = await bot.handle(Message("tips", lang_hint="nb-NO"))

    assert reply.kind is ReplyKind.TIP and reply.lang == "nb"
    assert reply.text in {
        "Før du legger ut et bilde fra jobben, sjekk bakgrunnen.",
        "Du må aldri godta en venneforespørsel fra lederen din.",
    }
    assert reply.title == "NB tip"


async def test_tips_without_a_platform_language_is_the_norwegian_command(bot: Conversation) -> None:
    assert (await bot.handle(Message("tips"))).lang == "nb"  # `policybot ask tips`, as documented
    assert (await bot.handle(Message("tips", lang_hint="en-US"))).lang == "en"


async def test_topics_list_every_entry_by_title(bot: Conversation) -> None:
    reply = bot.topics("nb")

    assert [c.title for c in reply.choices] == [
        "Legge til lederen din i sosiale medier",
        "Bilder og video på jobben",
    ]


@pytest.mark.parametrize("typed", ["", "   \n\t ", "🙂👍🎉", "???", "\x00\x07\x1b"])
async def test_empty_or_wordless_messages_get_an_invitation_to_ask(bot: Conversation, typed: str) -> None:
    reply = await bot.handle(Message(typed, lang_hint="nb"))

    assert reply.kind is ReplyKind.HELP and reply.text == "NB empty"


async def test_a_huge_message_is_read_from_its_beginning_and_says_so(bot: Conversation) -> None:
    reply = await bot.handle(Message("Can I add my boss on fb? " + "blah " * 20_000))

    assert reply.kind in (ReplyKind.ANSWER, ReplyKind.SUGGESTIONS, ReplyKind.FALLBACK)
    assert reply.text.startswith("_EN long_message_")
    assert len(reply.question) <= 1000


async def test_control_characters_inside_a_question_do_not_matter(bot: Conversation) -> None:
    reply = await bot.handle(Message("can\x00 i add\u200b my boss\x1b on fb?"))

    assert reply.entry_id == "friend-manager"


async def test_feedback_is_recorded_without_who_gave_it(bot: Conversation, notebook: Notebook) -> None:
    thanks = await bot.feedback("friend-manager", helpful=False, lang="nb")

    assert thanks == "NB feedback_thanks_unhelpful"
    assert notebook.calls == [("feedback", "friend-manager", False)]


async def test_a_recorder_that_fails_does_not_cost_the_user_the_answer(
    tiny_kb_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Recorder):
        async def record_question(self, *args: object) -> None:
            raise OSError("database is down")

    bot = Conversation(await load_knowledge(tiny_kb_dir), recorder=Broken())

    reply = await bot.handle(Message("Can I add my boss on fb?"))
    await bot.drain()  # the recording runs in the background: wait for it to fail

    assert reply.entry_id == "friend-manager"
    assert [
        (r.levelname, r.getMessage(), r.exc_info[0] if r.exc_info else None)
        for r in caplog.records
        if r.name == "bot.conversation"
    ] == [("ERROR", "could not record a question", OSError)]


async def test_a_reload_swaps_the_whole_knowledge_base_at_once(bot: Conversation, tmp_path: Path) -> None:
    changed = write_kb(tmp_path / "v2", ENTRIES.replace("Yes, you may", "Of course you may"))

    bot.reload(await load_knowledge(changed))
    reply = await bot.handle(Message("Can I add my boss on fb?"))

    assert reply.text.startswith("Of course you may")
