"""Slack: HR answers an "Ask HR" question in its thread, and the employee gets the answer in a DM.

Same set-up as test_slack.py: the real server over HTTP, signed events in, the fake Web API recording
what the bot sends.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.adapters.slack_harness import ASKER, HR_CHANNEL, Policybot, StartBot, payload, signed
from tests.fakes.slack_api import BOT_ID, BOT_USER_ID, Call


@pytest.fixture
async def bot(start_bot: StartBot) -> Policybot:
    """policybot with an HR channel, as in test_slack.py."""
    return await start_bot()


async def escalate(bot: Policybot, question: str = "bananas") -> str:
    """An employee asks, gets the fallback and presses "Ask HR"; returns the HR post's thread ts."""
    await bot.dm(question)
    [fallback] = await bot.fake.wait_for("chat.postMessage")
    await bot.click(fallback, "ask_hr")
    posts = await bot.fake.wait_for("chat.postMessage", n=2)
    assert posts[1].params["channel"] == HR_CHANNEL
    await bot.fake.wait_for("response_url")  # "sent to HR": the route is stored before this
    return bot.fake.last_ts


async def hr_writes(bot: Policybot, event_id: str, *, kind: str = "message", **event: Any) -> None:
    """Deliver a message event from the HR channel (a sample payload with `event` fields changed)."""
    body = copy.deepcopy(payload("message_hr_thread"))
    body["event_id"] = event_id
    body["event"].update(event)
    body["event"]["type"] = kind
    if kind == "app_mention":
        body["event"].pop("channel_type", None)
    text = json.dumps(body)
    status, _ = await bot.post(text, "application/json", signed(text))
    assert status == 200


def dms_to(bot: Policybot, user: str) -> list[Call]:
    return [c for c in bot.fake.calls_to("chat.postMessage") if c.params.get("channel") == user]


async def test_hr_s_reply_in_the_escalation_thread_reaches_the_employee(bot: Policybot) -> None:
    thread = await escalate(bot)

    await hr_writes(bot, "Ev0HR1", thread_ts=thread)

    *_, relayed = await bot.fake.wait_for("chat.postMessage", n=3)
    assert relayed.params["channel"] == ASKER  # a DM with the employee, not the HR channel
    assert "EN hr_reply" in relayed.text
    assert "<https://intranet.example.com/photos|the photo rules>" in relayed.text  # HR's link works
    assert "<@U0HRBOSS>" not in relayed.text and "U0HRBOSS" in relayed.text  # shown, pings nobody


async def test_the_route_holds_only_who_to_reach_never_the_question(bot: Policybot) -> None:
    thread = await escalate(bot, "Can I post photos of my sick colleague?")

    route = await bot.store.escalation("slack", f"{HR_CHANNEL}:{thread}")

    assert route is not None
    assert (route.route, route.lang) == ({"user": ASKER}, "en")
    assert "colleague" not in json.dumps(route.route)


async def test_a_reply_in_another_thread_of_the_hr_channel_goes_nowhere(bot: Policybot) -> None:
    await escalate(bot)

    await hr_writes(bot, "Ev0HR2", thread_ts="1699999999.000100")  # HR chatting about something else
    await hr_writes(bot, "Ev0HR3", thread_ts=None)  # a new post in the HR channel
    await bot.fake.settle()

    assert bot.fake.count("chat.postMessage") == 2  # the fallback and the HR post, nothing more
    assert dms_to(bot, ASKER) == []


async def test_the_bot_s_own_and_other_bots_messages_in_the_thread_are_not_relayed(bot: Policybot) -> None:
    thread = await escalate(bot)

    await hr_writes(bot, "Ev0OWN1", thread_ts=thread, user=BOT_USER_ID, bot_id=BOT_ID)
    await hr_writes(bot, "Ev0BOT2", thread_ts=thread, user="U0OTHERBOT", bot_id="B0OTHER")
    await hr_writes(bot, "Ev0EDIT", thread_ts=thread, subtype="message_changed")
    await bot.fake.settle()

    assert bot.fake.count("chat.postMessage") == 2


async def test_a_reply_that_mentions_the_bot_is_relayed_once_and_not_answered(bot: Policybot) -> None:
    thread = await escalate(bot)
    text = f"<@{BOT_USER_ID}> yes, you can post it"

    await hr_writes(bot, "Ev0HRM1", thread_ts=thread, text=text)
    await hr_writes(bot, "Ev0HRM2", kind="app_mention", thread_ts=thread, text=text)
    await bot.fake.settle()

    [relayed] = dms_to(bot, ASKER)
    assert "yes, you can post it" in relayed.text and BOT_USER_ID not in relayed.text
    assert bot.fake.count("chat.postMessage") == 3  # no answer posted into HR's thread


async def test_every_hr_reply_in_the_thread_is_relayed_in_the_employee_s_language(bot: Policybot) -> None:
    await bot.dm("Kan jeg legge ut bilder av bananer?")
    [answer] = await bot.fake.wait_for("chat.postMessage")
    await bot.click(answer, "ask_hr")
    await bot.fake.wait_for("response_url")
    thread = bot.fake.last_ts

    await hr_writes(bot, "Ev0NB1", thread_ts=thread, text="Ja, det går fint.")
    await hr_writes(bot, "Ev0NB2", thread_ts=thread, text="Og husk samtykke.", ts="1700000800.000800")

    relayed = await bot.fake.wait_for("chat.postMessage", n=4)
    assert [c.params["channel"] for c in relayed[2:]] == [ASKER, ASKER]
    assert "NB hr_reply" in relayed[2].text and "Ja, det går fint." in relayed[2].text
    assert "Og husk samtykke." in relayed[3].text
