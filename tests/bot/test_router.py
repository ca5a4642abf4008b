"""The bot's workflows, once, as conversations on the in-memory platform (bot/memory.py).

No HTTP and no SDK: a person asks, clicks and votes, HR answers in its thread, and what the bot sent is
read back from the platform. The Slack and Teams suites test how their adapters translate and render.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from bot.claims import Claims, Hold
from bot.config import Settings
from bot.conversation import Conversation, ReplyKind
from bot.errors import StoreError
from bot.knowledge_loader import load_knowledge
from bot.memory import HR, Chat, MemoryPlatform
from bot.reload import Reloader
from bot.router import Router
from bot.store import Store, TipStatus
from bot.tips import TipScheduler

ADMIN = "U0ADMIN"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite:///{tmp_path / 'router.db'}")
    yield store
    await store.close()


@pytest.fixture
async def conversation(tiny_kb_dir: Path, store: Store) -> Conversation:
    return Conversation(await load_knowledge(tiny_kb_dir), recorder=store)


@pytest.fixture
def router(conversation: Conversation, store: Store, tiny_kb_dir: Path) -> Router:
    return Router(
        conversation,
        admins=frozenset({ADMIN}),
        claims=Claims(store),
        escalations=store,
        installs=store,
        insights=store,
        reloader=Reloader(conversation, tiny_kb_dir),
    )


@pytest.fixture
def chat(router: Router) -> Chat:
    return Chat(router)


# ------------------------------------------------------------------------------------------ answering


async def test_a_question_is_answered_where_it_was_asked(chat: Chat) -> None:
    [sent] = await chat.ask("can I add my boss on fb?")
    assert (sent.kind, sent.to) == ("reply", "dm-1")
    assert sent.reply is not None and sent.reply.kind is ReplyKind.ANSWER
    assert sent.reply.entry_id == "friend-manager"
    assert sent.text.startswith("Yes, you may")


async def test_a_question_out_of_scope_gets_the_fallback_with_the_way_to_hr(chat: Chat) -> None:
    [sent] = await chat.ask("bananas")
    assert sent.reply is not None and sent.reply.kind is ReplyKind.FALLBACK
    assert sent.text.startswith("EN fallback")
    assert sent.reply.question == "bananas"  # kept for the Ask HR button


async def test_a_slash_command_with_nothing_typed_gets_the_help_and_a_message_gets_the_empty_help(
    chat: Chat,
) -> None:
    [help_] = await chat.command("")
    assert help_.text == "EN help"
    [empty] = await chat.ask("")
    assert empty.text == "EN empty"


async def test_a_message_answered_once_is_not_answered_again_under_the_same_key(chat: Chat) -> None:
    assert len(await chat.ask("can I add my boss on fb?", once="mention:C1:1.0")) == 1
    assert await chat.ask("can I add my boss on fb? (edited)", once="mention:C1:1.0") == []
    assert len(await chat.ask("can I add my boss on fb?", once="mention:C1:2.0")) == 1


async def test_a_platform_redelivery_is_claimed_once(router: Router) -> None:
    assert await router.first_delivery("slack:Ev1")
    assert not await router.first_delivery("slack:Ev1")
    assert await router.first_delivery("slack:Ev2")


async def test_claims_fall_back_to_this_process_when_the_store_is_down(store: Store) -> None:
    class DownStore:
        async def claim_event(self, event_id: str, *, ttl: timedelta = timedelta(hours=1)) -> bool:
            raise StoreError("could not reach the database")

        async def claim_events(
            self, claims: Sequence[tuple[str, timedelta]], *, hold: Hold | None = None, lease: timedelta
        ) -> list[bool]:
            raise StoreError("could not reach the database")

    claims = Claims(DownStore())
    assert await claims.claim("teams:a:1")
    assert not await claims.claim("teams:a:1")  # the retry reaching this replica is still caught


# ---------------------------------------------------------------------------------------------- buttons


async def test_picking_a_suggestion_answers_it_and_records_the_pick_for_hr(chat: Chat, store: Store) -> None:
    [prompt] = await chat.ask("what about pictures of my boss")
    assert prompt.reply is not None and prompt.reply.kind is ReplyKind.SUGGESTIONS
    [answer] = await chat.pick(prompt.reply, 1)
    assert answer.reply is not None and answer.reply.kind is ReplyKind.ANSWER
    assert answer.reply.entry_id == prompt.reply.choices[1].entry_id
    [pick] = await store.suggestion_picks()
    assert (pick["entry_id"], pick["question"]) == (answer.reply.entry_id, "what about pictures of my boss")


async def test_a_related_entry_is_answered_in_a_new_reply(chat: Chat) -> None:
    [answer] = await chat.ask("can I add my boss on fb?")
    assert answer.reply is not None
    [related] = await chat.pick(answer.reply, related=True)
    assert related.reply is not None and related.reply.entry_id == "workplace-photos"


async def test_a_vote_is_recorded_without_who_and_the_card_thanks_instead(chat: Chat, store: Store) -> None:
    [answer] = await chat.ask("can I add my boss on fb?")
    assert answer.reply is not None
    [card] = await chat.vote(answer.reply, helpful=False)
    assert (card.kind, card.text) == ("card", "EN feedback_thanks_unhelpful")
    assert card.reply is not None and card.reply.entry_id == "friend-manager"
    assert await store.feedback_counts() == {"friend-manager": (0, 1)}


async def test_a_button_for_an_entry_removed_since_is_not_acted_on(
    chat: Chat, conversation: Conversation, tiny_kb_dir: Path, store: Store
) -> None:
    [answer] = await chat.ask("can I add my boss on fb?")
    assert answer.reply is not None
    entries = (tiny_kb_dir / "entries.yaml").read_text(encoding="utf-8")
    (tiny_kb_dir / "entries.yaml").write_text(entries.replace("friend-manager", "manager-friend"))
    conversation.reload(await load_knowledge(tiny_kb_dir))

    [vote] = await chat.vote(answer.reply, helpful=True)
    assert vote.kind == "not_understood"
    assert await store.feedback_counts() == {}


# ------------------------------------------------------------------------------------- Ask HR and back


async def test_ask_hr_passes_the_question_on_and_hr_s_answer_comes_back_to_the_asker_once(
    chat: Chat, store: Store
) -> None:
    [fallback] = await chat.ask("can I write a blog about bananas?")
    assert fallback.reply is not None and fallback.reply.kind is ReplyKind.FALLBACK

    to_hr, to_asker = await chat.ask_hr(fallback.reply)
    assert (to_hr.kind, to_hr.text) == ("hr", "U1 asks: can I write a blog about bananas?")
    assert (to_asker.kind, to_asker.text) == ("text", "EN escalation_sent")
    route = await store.escalation("memory", to_hr.to)
    assert route is not None and route.route == {"conversation": "dm-1"}  # the asker's chat, no question
    assert "bananas" not in str(route)

    relayed, sent = await chat.hr_answers(to_hr.to, "Yes, if you say the views are your own.", once="m1")
    assert relayed
    [private] = sent
    assert (private.kind, private.to) == ("private", "dm-1")
    assert private.text == "EN hr_reply Yes, if you say the views are your own."

    relayed, sent = await chat.hr_answers(to_hr.to, "Yes, if you say the views are your own.", once="m1")
    assert relayed and sent == []  # the same reply delivered twice is relayed once


async def test_a_message_in_another_hr_thread_is_not_a_relay(chat: Chat) -> None:
    relayed, sent = await chat.hr_answers(f"{HR}:99", "lunch at 12?")
    assert not relayed and sent == []  # an ordinary message, for the platform to treat as such


async def test_ask_hr_says_so_when_the_hr_conversation_cannot_be_reached(chat: Chat, store: Store) -> None:
    [fallback] = await chat.ask("bananas")
    assert fallback.reply is not None
    chat.platform.fail_hr = True
    [to_asker] = await chat.ask_hr(fallback.reply)
    assert (to_asker.kind, to_asker.text) == ("text", "EN escalation_failed")


async def test_ask_hr_without_an_hr_conversation_tells_the_asker_it_failed(router: Router) -> None:
    chat = Chat(router, MemoryPlatform(hr=False))
    [fallback] = await chat.ask("bananas")
    assert fallback.reply is not None
    [to_asker] = await chat.ask_hr(fallback.reply)
    assert to_asker.text == "EN escalation_failed"


# ------------------------------------------------------------------------------------------ admins


@pytest.mark.parametrize("command", ["reload", "report", "tip now"])
async def test_admin_commands_are_refused_for_everyone_else(router: Router, command: str) -> None:
    chat = Chat(router, who="U0EMPLOYEE")
    [sent] = await chat.ask(command)
    assert (sent.kind, sent.text) == ("text", "EN not_allowed")


async def test_why_from_an_employee_is_an_ordinary_question(router: Router) -> None:
    [sent] = await Chat(router, who="U0EMPLOYEE").ask("why can't I post photos from work?")
    assert sent.kind == "reply"


async def test_an_admin_asks_why_and_reloads(router: Router) -> None:
    chat = Chat(router, who=ADMIN)
    [why] = await chat.ask("why can I add my boss on fb")
    assert why.kind == "text" and "friend-manager" in why.text
    [reload] = await chat.ask("reload")
    assert reload.text.startswith("EN reload_ok")


async def test_admin_commands_are_only_for_messages_where_the_platform_allows_them(router: Router) -> None:
    [sent] = await Chat(router, who=ADMIN).ask("reload", admin=False)
    assert sent.kind == "reply"  # e.g. a Slack DM: an ordinary question


# ------------------------------------------------------------------------------------ reload notices


async def test_hr_hears_of_a_rejected_edit_and_of_the_fix(router: Router, tiny_kb_dir: Path) -> None:
    chat = Chat(router, who=ADMIN)
    entries = tiny_kb_dir / "entries.yaml"
    good = entries.read_text(encoding="utf-8")
    entries.write_text(good + "  - id: [broken\n", encoding="utf-8")
    sent = await chat.ask("reload")
    note = next(s for s in sent if s.to == HR)
    assert note.text.startswith("EN reload_failed") and "entries.yaml" in note.text

    entries.write_text(good, encoding="utf-8")
    sent = await chat.ask("reload")
    assert [s.text.split()[:2] for s in sent if s.to == HR] == [["EN", "reload_ok"]]


async def test_a_platform_without_hr_hears_nothing(router: Router, tiny_kb_dir: Path) -> None:
    chat = Chat(router, MemoryPlatform(hr=False), who=ADMIN)
    (tiny_kb_dir / "entries.yaml").write_text("entries: [", encoding="utf-8")
    [sent] = await chat.ask("reload")
    assert sent.to == "dm-1"


# -------------------------------------------------------------------------------------------- tips


async def test_an_admin_posts_the_tip_now_and_hears_where_it_went(
    conversation: Conversation, store: Store
) -> None:
    platform = MemoryPlatform(name="slack")
    settings = Settings.from_env({"POLICYBOT_TIP_SLACK_CHANNELS": "C0TIPS:nb"})
    tips = TipScheduler.from_settings(settings, store, conversation, [platform])
    router = Router(conversation, admins=frozenset({ADMIN}), claims=Claims(store), tips=tips)
    chat = Chat(router, platform, who=ADMIN)

    tip, answer = await chat.ask("tip now")
    assert (tip.kind, tip.to) == ("tip", "C0TIPS")
    assert tip.reply is not None and tip.reply.kind is ReplyKind.TIP and tip.reply.lang == "nb"
    assert (answer.kind, answer.to) == ("text", "dm-1")
    assert "`slack:C0TIPS` [nb]" in answer.text and "posted" in answer.text
    [post] = await store.tip_posts()
    assert (post.target_id, post.status) == ("C0TIPS", TipStatus.POSTED)


async def test_tip_now_without_a_scheduler_says_tips_need_the_database(router: Router) -> None:
    [sent] = await Chat(router, who=ADMIN).ask("tip now")
    assert sent.text.startswith("⚠️ Tips need the database")


# ---------------------------------------------------------------------------------------- installs


async def test_an_install_is_kept_for_tips_and_greeted_and_an_uninstall_forgets_it(
    chat: Chat, store: Store
) -> None:
    [greeting] = await chat.install(greet=True)
    assert greeting.text == "EN greeting"
    [stored] = await store.references("memory")
    assert (stored.conversation_id, stored.lang) == ("dm-1", "en")

    assert await chat.uninstall() == []
    assert await store.references("memory") == []


async def test_an_install_in_a_team_is_not_greeted(chat: Chat, store: Store) -> None:
    assert await chat.install(greet=False, lang="nb") == []
    [stored] = await store.references("memory")
    assert stored.lang == "nb"


async def test_claims_made_ahead_go_in_the_same_store_round_trip_and_wait_for_their_caller() -> None:
    """An @mention: its event id and its message are claimed in one call to the store."""

    class CountingStore:
        def __init__(self) -> None:
            self.calls: list[list[str]] = []
            self.seen: set[str] = {"slack-mention:C1:1.0"}  # the message was answered before (an edit)

        async def claim_event(self, event_id: str, *, ttl: timedelta = timedelta(hours=1)) -> bool:
            return (await self.claim_events([(event_id, ttl)]))[0]

        async def claim_events(
            self, claims: Sequence[tuple[str, timedelta]], *, hold: Hold | None = None, lease: timedelta
        ) -> list[bool]:
            self.calls.append([key for key, _ in claims])
            won = [key not in self.seen for key, _ in claims]
            self.seen.update(key for key, _ in claims)
            return won

    store = CountingStore()
    claims = Claims(store)
    week = timedelta(days=7)
    assert await claims.claim("Ev1", ahead=[("slack-mention:C1:2.0", week)])
    assert await claims.claim("slack-mention:C1:2.0", week)  # waiting here: no second round trip
    assert store.calls == [["Ev1", "slack-mention:C1:2.0"]]

    assert await claims.claim("Ev2", ahead=[("slack-mention:C1:1.0", week)])  # an edit, a new event id
    assert not await claims.claim("slack-mention:C1:1.0", week)  # ... of a message answered already
    assert not await claims.claim("Ev2", ahead=[("slack-mention:C1:3.0", week)])  # a retry: dropped
    assert len(store.calls) == 3
