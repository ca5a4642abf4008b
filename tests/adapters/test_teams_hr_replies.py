"""Teams: HR answers an "Ask HR" question in its channel thread, and the employee gets the answer.

Same set-up as test_teams.py: the real server at /api/messages, the fake Bot Connector recording what
the bot sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.adapters.test_teams import HR_CONVERSATION, PERSONAL, Policybot, activity, start_policybot
from tests.fakes.bot_connector import ConnectorCall, FakeBotConnector, bot_connector  # noqa: F401 (a fixture)


@pytest.fixture
async def bot(
    tiny_kb_dir: Path,
    tmp_path: Path,
    bot_connector: FakeBotConnector,  # noqa: F811 (the fixture)
) -> AsyncIterator[Policybot]:
    """policybot in development mode (anonymous Teams endpoint) with an HR channel in Teams."""
    env = {"POLICYBOT_ENV": "development", "POLICYBOT_HR_TEAMS_CONVERSATION": HR_CONVERSATION}
    async with start_policybot(env, tiny_kb_dir, tmp_path, bot_connector) as running:
        yield running


async def escalate(bot: Policybot, question: str = "Kan jeg blogge om jobben?") -> str:
    """The employee presses "Ask HR" in their personal chat; returns the HR thread's conversation id."""
    value = {"policybot": "ask_hr", "lang": "nb", "question": question}
    await bot.post(activity("card_action", bot.connector, value=value))
    [to_hr] = bot.connector.calls_to(HR_CONVERSATION)
    return f"{HR_CONVERSATION};messageid={to_hr.response_id}"


async def hr_writes(bot: Policybot, thread: str, **changes: object) -> None:
    body = activity("hr_thread_reply", bot.connector, **changes)
    body["conversation"]["id"] = thread
    status, _ = await bot.post(body)
    assert status == 200


def to_employee(bot: Policybot) -> list[ConnectorCall]:
    return bot.connector.calls_to(PERSONAL)


async def test_hr_s_reply_in_the_escalation_thread_reaches_the_employee(bot: Policybot) -> None:
    thread = await escalate(bot)

    await hr_writes(bot, thread)

    sent, relayed = to_employee(bot)
    assert sent.text == "NB escalation_sent"
    assert relayed.method == "POST" and relayed.activity_id is None  # a new message in their chat
    assert relayed.text == "NB hr_reply Yes, blogging is fine if you say the views are your own."
    assert "policybot" not in relayed.text  # HR's @mention of the bot is not passed on
    assert bot.connector.calls_to(thread) == []  # nothing is answered in HR's thread


async def test_the_route_is_the_employee_s_conversation_never_the_question(bot: Policybot) -> None:
    thread = await escalate(bot, "Kan jeg blogge om den syke kollegaen min?")

    route = await bot.store.escalation("teams", thread)

    assert route is not None and route.lang == "nb"
    assert route.route["conversation"]["id"] == PERSONAL
    assert route.route.get("user") is None  # the conversation, not the person
    assert "kollega" not in str(route.route)


async def test_a_reply_in_another_hr_thread_goes_nowhere(bot: Policybot) -> None:
    await escalate(bot)

    await hr_writes(bot, f"{HR_CONVERSATION};messageid=1699999999999", id="other-thread-reply")

    assert [c.text for c in to_employee(bot)] == ["NB escalation_sent"]


async def test_the_bot_s_own_message_in_the_thread_is_not_relayed(bot: Policybot) -> None:
    thread = await escalate(bot)
    calls = len(bot.connector.calls)

    await hr_writes(bot, thread, id="own", **{"from": {"id": "28:policybot-app", "name": "policybot"}})

    assert len(bot.connector.calls) == calls


async def test_a_redelivered_hr_reply_is_relayed_once(bot: Policybot) -> None:
    thread = await escalate(bot)

    await hr_writes(bot, thread)
    await hr_writes(bot, thread)  # Teams retries when the bot was slow

    assert len(to_employee(bot)) == 2  # "sent to HR", then HR's reply once
