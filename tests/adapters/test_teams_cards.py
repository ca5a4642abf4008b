"""Adaptive Cards for Teams (adapters/teams_cards.py): pure functions, no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.teams_cards import MAX_ACTIONS, render_card
from bot.conversation import Choice, Conversation, Message, Reply, ReplyKind
from bot.knowledge import Link
from bot.knowledge_loader import load_knowledge

ROOT = Path(__file__).resolve().parents[2]


def action_sets(card: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [element["actions"] for element in card["body"] if element["type"] == "ActionSet"]


def test_the_ask_hr_button_is_only_offered_when_an_hr_conversation_is_configured(tiny_kb_dir: Path) -> None:
    reply = Reply(kind=ReplyKind.FALLBACK, lang="en", text="EN fallback", question="blog?", labels={})
    with_hr = render_card(reply, hr_enabled=True, say=lambda key, lang: f"{lang} {key}")
    without = render_card(reply, hr_enabled=False, say=lambda key, lang: f"{lang} {key}")

    assert [a["title"] for a in with_hr["actions"]] == ["en ask_hr"]
    assert "actions" not in without


async def test_every_shipped_topic_gets_a_button_in_sets_teams_shows_in_full() -> None:
    conversation = Conversation(await load_knowledge(ROOT / "knowledge"), default_lang="en")
    topics = await conversation.handle(Message(text="topics"))
    assert topics.kind is ReplyKind.TOPICS and len(topics.choices) == 20

    sets = action_sets(render_card(topics, hr_enabled=True))

    assert MAX_ACTIONS == 6  # Teams' host config (see adapters/teams_cards.py)
    assert all(len(actions) <= MAX_ACTIONS for actions in sets)
    titles = [action["title"] for actions in sets for action in actions]
    assert titles == [choice.title for choice in topics.choices]  # all of them, in order


def test_links_and_related_topics_are_split_the_same_way() -> None:
    links = tuple(Link(f"https://intranet.example.com/{i}", {"en": f"Link {i}"}) for i in range(7))
    related = tuple(Choice(f"entry-{i}", f"Topic {i}") for i in range(8))
    reply = Reply(kind=ReplyKind.ANSWER, lang="en", text="Answer", entry_id="e", links=links, related=related)

    sets = action_sets(render_card(reply, hr_enabled=False))

    assert [len(actions) for actions in sets] == [MAX_ACTIONS, 1, MAX_ACTIONS, 2]
    flat = [action for actions in sets for action in actions]
    assert [a["url"] for a in flat[:7]] == [link.url for link in links]
    assert [a["data"]["entry"] for a in flat[7:]] == [choice.entry_id for choice in related]
