"""Slack text safety and Block Kit (adapters/slack_blocks.py): pure functions, no server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.slack_blocks import (
    BUTTON_VALUE_MAX,
    Rendered,
    ask_hr_value,
    neutralise,
    render,
    to_mrkdwn,
)
from bot.conversation import Choice, Reply, ReplyKind


def buttons(message: Rendered) -> list[dict[str, Any]]:
    return [e for block in message.blocks if block["type"] == "actions" for e in block["elements"]]


def test_the_ask_hr_button_value_fits_slack_s_limit_however_long_the_question() -> None:
    question = 'Kan jeg "dele" bilder?\n' * 400
    value = ask_hr_value(question, "nb", "workplace-photos")
    assert len(value) <= BUTTON_VALUE_MAX
    decoded = json.loads(value)
    assert decoded["q"].endswith("…")
    assert question.startswith(decoded["q"][:-1])
    assert decoded["e"] == "workplace-photos"


def test_user_text_can_never_ping_anyone_when_repeated() -> None:
    text = "<!channel> <!here|here> <!everyone> <@U024BE7LH> <@W0ENTERPRISE|kari> <!subteam^SAZ94GDB8> @here"
    safe = neutralise(text)
    assert "<!" not in safe
    assert "<@" not in safe
    assert "@here" not in safe and "@channel" not in safe
    assert safe == (
        "@\u2060channel @\u2060here @\u2060everyone @\u2060U024BE7LH @\u2060kari @\u2060group @\u2060here"
    )


def test_markdown_becomes_slack_mrkdwn_escaped() -> None:
    markdown = (
        "## Rules\n**Never** share *customer* data.\n- see [the policy](https://x.example/p?a=1&b=2)\n1 < 2"
    )
    assert to_mrkdwn(markdown) == (
        "*Rules*\n*Never* share *customer* data.\n"
        "• see <https://x.example/p?a=1&amp;b=2|the policy>\n1 &lt; 2"
    )


def test_did_you_mean_button_values_fit_slack_s_limit_however_the_question_escapes() -> None:
    question = '"' * 600 + "\\" * 600  # 1200 characters, 2400 once JSON-escaped
    choices = (Choice("friend-manager", "Manager"), Choice("workplace-photos", "Photos"))
    reply = Reply(ReplyKind.SUGGESTIONS, "en", "Did you mean", choices=choices, question=question)

    picks = [b for b in buttons(render(reply, ask_hr=True)) if b["action_id"].startswith("pick_")]
    assert len(picks) == 2
    for button, choice in zip(picks, choices, strict=True):
        assert len(button["value"]) <= BUTTON_VALUE_MAX
        value = json.loads(button["value"])
        assert (value["e"], value["l"]) == (choice.entry_id, "en")
        assert value["q"].endswith("…")
        assert question.startswith(value["q"][:-1])


@pytest.mark.parametrize(
    "question",
    [
        '"' * 600 + "?" * 1500,
        '"' * 600 + "\\" * 600,
        '"' * 1500,
        '"' * 3000,
        "Can I post photos from the office party? " * 80,
    ],
    ids=["600_quotes", "quotes_and_backslashes", "1500_quotes", "3000_quotes", "plain"],
)
def test_a_cut_question_keeps_as_much_as_fits_however_it_escapes(question: str) -> None:
    value = ask_hr_value(question, "nb", "workplace-photos")
    assert 1900 <= len(value) <= BUTTON_VALUE_MAX
    cut = json.loads(value)["q"]
    assert cut.endswith("…") and question.startswith(cut[:-1])


def test_the_tip_title_that_hr_already_bolds_is_not_bolded_twice() -> None:
    tip = Reply(ReplyKind.TIP, "en", "Think before you post.", title="💡 *Tip of the day*")
    message = render(tip, ask_hr=False)
    first = message.blocks[0]["text"]["text"]
    assert first.startswith("💡 *Tip of the day*\nThink before you post.")
    assert "**" not in first and "*💡" not in first


def test_a_plain_answer_title_is_shown_in_bold() -> None:
    answer = Reply(ReplyKind.ANSWER, "en", "Yes, you may.", title="Adding your manager", entry_id="x")
    assert render(answer, ask_hr=False).blocks[0]["text"]["text"].startswith("*Adding your manager*\n")
