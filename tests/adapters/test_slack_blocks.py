"""Slack text safety and Block Kit (adapters/slack_blocks.py): pure functions, no server."""

from __future__ import annotations

import json

from adapters.slack_blocks import BUTTON_VALUE_MAX, ask_hr_value, neutralise, to_mrkdwn


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
