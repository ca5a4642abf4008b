"""Adaptive Cards for Teams (adapters/teams_cards.py): pure functions, no server."""

from __future__ import annotations

from pathlib import Path

from adapters.teams_cards import render_card
from bot.conversation import Reply, ReplyKind


def test_the_ask_hr_button_is_only_offered_when_an_hr_conversation_is_configured(tiny_kb_dir: Path) -> None:
    reply = Reply(kind=ReplyKind.FALLBACK, lang="en", text="EN fallback", question="blog?", labels={})
    with_hr = render_card(reply, hr_enabled=True, say=lambda key, lang: f"{lang} {key}")
    without = render_card(reply, hr_enabled=False, say=lambda key, lang: f"{lang} {key}")

    assert [a["title"] for a in with_hr["actions"]] == ["en ask_hr"]
    assert "actions" not in without
