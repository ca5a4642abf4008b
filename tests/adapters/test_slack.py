"""Slack, end to end over real HTTP: signed requests in, recorded Web API calls out.

The real policybot server runs on 127.0.0.1 with `SLACK_API_URL` pointing at the fake Slack Web API
(tests/fakes/slack_api.py); nothing of ours is patched. Payloads are small hand-written samples of
Slack's real shapes (tests/adapters/payloads/slack/).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import event

from adapters.services import Services
from adapters.slack import incoming_text
from adapters.slack_web import SlackDeliverer, web_client
from bot.config import Settings, SlackSettings
from bot.conversation import Conversation
from bot.knowledge_loader import load_knowledge
from bot.store import Store
from bot.tips import Target
from tests.adapters.slack_harness import (
    ASKER,
    HR_CHANNEL,
    SECRET,
    SLOW,
    Policybot,
    StartBot,
    action_ids,
    cli_env,
    free_port,
    payload,
    signed,
)
from tests.conftest import messages_yaml, wait_until_serving, write_kb
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER_ID, Call, FakeSlackApi


@pytest.fixture
async def bot(start_bot: StartBot) -> Policybot:
    return await start_bot()


# ------------------------------------------------------------------------------------- asking


async def test_a_direct_message_is_answered_in_the_dm_with_feedback_and_ask_hr_buttons(
    bot: Policybot,
) -> None:
    bot.fake.slow_next("chat.postMessage", SLOW)
    started = time.perf_counter()
    assert await bot.dm("Can I add my manager on Facebook?") == 200
    assert time.perf_counter() - started < 2  # acknowledged well within Slack's limit, before answering

    [answer] = await bot.fake.wait_for("chat.postMessage", timeout=SLOW + 5)
    assert answer.at - started >= SLOW  # the answer came after the ack
    assert answer.token == BOT_TOKEN
    assert answer.params["channel"] == "D0ASKER01"
    assert "thread_ts" not in answer.params
    assert "*Adding your manager on social media*" in answer.text
    assert "Yes, you may — but you never have to." in answer.text
    assert "EN footer_source" in answer.text  # the context footer
    assert action_ids(answer) == ["related_0", "feedback_yes", "feedback_no", "ask_hr"]
    assert answer.buttons[0]["text"]["text"] == "Photos and video at work"  # the related entry
    feedback = json.loads(answer.buttons[1]["value"])
    assert feedback == {"e": "friend-manager", "l": "en"}
    assert ASKER not in json.dumps(answer.buttons)  # buttons never carry who asked


async def test_a_mention_is_answered_in_a_thread_in_the_question_s_language(bot: Policybot) -> None:
    mention = payload("app_mention")
    await bot.event(mention, text=f"<@{BOT_USER_ID}> Kan jeg legge til sjefen min på Facebook?")

    [answer] = await bot.fake.wait_for("chat.postMessage")
    assert answer.params["channel"] == "C0GENERAL"
    assert answer.params["thread_ts"] == mention["event"]["ts"]
    assert "Ja, det kan du — men du må aldri." in answer.text
    assert "NB feedback_prompt" in answer.text
    assert json.loads(answer.buttons[1]["value"]) == {"e": "friend-manager", "l": "nb"}


async def test_a_mention_inside_a_thread_answers_in_that_thread(bot: Policybot) -> None:
    await bot.event(payload("app_mention"), thread_ts="1700000150.000150", ts="1700000250.000250")

    [answer] = await bot.fake.wait_for("chat.postMessage")
    assert answer.params["thread_ts"] == "1700000150.000150"


async def test_the_slash_command_answers_privately_and_knows_help_tip_and_topics(bot: Policybot) -> None:
    bot.fake.slow_next("response_url", SLOW)
    started = time.perf_counter()
    status, body, took = await bot.command("Can I post photos from work?", bot.fake.response_url("ask"))
    assert (status, body) == (200, "")
    assert took < 2  # acknowledged well within Slack's limit, before answering

    [answer] = await bot.fake.wait_for("response_url", timeout=SLOW + 5)
    assert answer.at - started >= SLOW  # the answer came after the ack
    assert answer.params["response_type"] == "ephemeral"
    assert answer.params["url_name"] == "ask"
    assert "Check that no customer, colleague or screen is in the picture" in answer.text
    assert "<https://intranet.example.com/photos|Photo rules>" in answer.text

    await bot.command("", bot.fake.response_url("empty"))
    await bot.command("help", bot.fake.response_url("help"))
    await bot.command("tip", bot.fake.response_url("tip"))
    await bot.command("emner", bot.fake.response_url("topics"))
    replies = {call.params["url_name"]: call for call in await bot.fake.wait_for("response_url", n=5)}
    assert "EN help" in replies["empty"].text
    assert "EN help" in replies["help"].text
    assert "EN tip" in replies["tip"].text
    assert "NB topics" in replies["topics"].text
    assert [b["text"]["text"] for b in replies["topics"].buttons] == [
        "Legge til lederen din i sosiale medier",
        "Bilder og video på jobben",
    ]
    assert all(call.params["response_type"] == "ephemeral" for call in replies.values())
    assert bot.fake.count("chat.postMessage") == 0  # nothing public


async def test_an_unclear_question_offers_one_button_per_suggestion_and_a_pick_answers_it(
    bot: Policybot,
) -> None:
    await bot.dm("what about pictures of my boss")
    [prompt] = await bot.fake.wait_for("chat.postMessage")
    assert "EN did_you_mean" in prompt.text
    assert action_ids(prompt)[:2] == ["pick_0", "pick_1"]
    titles = [b["text"]["text"] for b in prompt.buttons[:2]]
    assert titles == ["Adding your manager on social media", "Photos and video at work"]

    assert await bot.click(prompt, "pick_1") == 200
    [answer] = await bot.fake.wait_for("response_url")
    assert answer.params["replace_original"] is True  # the answer takes the prompt's place
    assert "Check that no customer, colleague or screen" in answer.text
    picks = await bot.store.suggestion_picks()
    assert [(p["question"], p["entry_id"]) for p in picks] == [
        ("what about pictures of my boss", "workplace-photos")
    ]


async def test_a_related_topic_button_in_the_dm_answers_in_a_new_message(bot: Policybot) -> None:
    await bot.dm("Can I add my manager on Facebook?")
    [answer] = await bot.fake.wait_for("chat.postMessage")

    await bot.click(answer, "related_0")
    calls = await bot.fake.wait_for("chat.postMessage", n=2)
    assert calls[1].params["channel"] == "D0ASKER01"
    assert "thread_ts" not in calls[1].params
    assert "Check that no customer, colleague or screen" in calls[1].text


async def a_channel_message(bot: Policybot, tmp_path: Path, where: str) -> Call:
    """The bot's message in a channel that a related button is clicked under: a daily tip in #tips, or
    its answer to a mention, in a thread in #general."""
    if where == "tip":
        conversation = Conversation(await load_knowledge(write_kb(tmp_path / "tip-knowledge")))
        deliverer = SlackDeliverer(web_client(SlackSettings(BOT_TOKEN, SECRET, api_url=bot.fake.api_url)))
        await deliverer.deliver(Target("slack", "C0TIPS", "en"), conversation.tip("en", "photo-check"))
    else:
        await bot.event(payload("app_mention"))
    [message] = await bot.fake.wait_for("chat.postMessage")
    return message


@pytest.mark.parametrize("where", ["tip", "mention"])
async def test_a_related_button_in_a_channel_answers_only_whoever_clicked(
    bot: Policybot, tmp_path: Path, where: str
) -> None:
    message = await a_channel_message(bot, tmp_path, where)

    assert await bot.click(message, "related_0", name="related") == 200
    assert await bot.click(message, "related_0", user="U0COLLEAGUE", name="related") == 200
    answers = await bot.fake.wait_for("response_url", n=2)
    for answer in answers:
        assert answer.params["response_type"] == "ephemeral"
        assert answer.params["replace_original"] is False
    assert "Check that no customer, colleague or screen" in answers[0].text
    await bot.fake.settle()
    assert bot.fake.count("chat.postMessage") == 1  # nothing new for the whole channel to read


@pytest.mark.parametrize("where", ["tip", "mention"])
async def test_a_related_click_whose_response_url_fails_is_answered_privately_once_where_it_was_clicked(
    bot: Policybot, tmp_path: Path, where: str
) -> None:
    message = await a_channel_message(bot, tmp_path, where)
    bot.fake.fail_next("response_url")  # expired, or Slack did not answer in time

    assert await bot.click(message, "related_0", name="related") == 200
    [private] = await bot.fake.wait_for("chat.postEphemeral")
    await bot.fake.settle()
    assert bot.fake.count("response_url") == 1  # not tried again: it may have arrived
    assert (private.params["channel"], private.params["user"]) == (message.params["channel"], ASKER)
    assert private.params.get("thread_ts") == message.params.get("thread_ts")  # the thread, if any
    assert "Check that no customer, colleague or screen" in private.text
    assert bot.fake.count("chat.postMessage") == 1


# ------------------------------------------------------------------------------------ buttons


async def test_thumbs_up_is_recorded_without_identity_and_the_message_thanks_instead(bot: Policybot) -> None:
    await bot.dm("Can I add my manager on Facebook?")
    [answer] = await bot.fake.wait_for("chat.postMessage")

    assert await bot.click(answer, "feedback_yes") == 200
    [update] = await bot.fake.wait_for("chat.update")
    assert update.params["channel"] == "D0ASKER01"
    assert update.params["ts"] == "1700000500.000500"
    assert "EN feedback_thanks" in update.text
    assert "Yes, you may" in update.text  # the answer stays
    assert "feedback_yes" not in action_ids(update)
    assert "ask_hr" not in action_ids(update)
    assert await bot.store.feedback_counts() == {"friend-manager": (1, 0)}


async def test_thumbs_down_on_a_private_answer_replaces_it_with_the_answer_and_thanks(bot: Policybot) -> None:
    await bot.command("Can I post photos from work?", bot.fake.response_url("ask"))
    [answer] = await bot.fake.wait_for("response_url")

    await bot.click(answer, "feedback_no", ephemeral=True, name="feedback")
    calls = await bot.fake.wait_for("response_url", n=2)
    thanks = calls[1]
    assert thanks.params["url_name"] == "feedback"
    assert thanks.params["replace_original"] is True
    assert "EN feedback_thanks_unhelpful" in thanks.text
    assert "Check that no customer" in thanks.text
    assert "feedback_no" not in action_ids(thanks)
    assert await bot.store.feedback_counts() == {"workplace-photos": (0, 1)}


async def test_ask_hr_posts_the_question_to_hr_with_mentions_neutralised(start_bot: StartBot) -> None:
    messages = messages_yaml().replace(
        'en: "EN escalation_to_hr {question}"', 'en: "EN escalation_to_hr from {user}:\\n> {question}"'
    )
    bot = await start_bot(messages=messages)
    await bot.dm("Can I post photos of <!channel> and <@U0OTHER99|ola> at <!subteam^S0HR|@hr-team>?")
    [answer] = await bot.fake.wait_for("chat.postMessage")

    await bot.click(answer, "ask_hr", name="hr")
    posts = await bot.fake.wait_for("chat.postMessage", n=2)
    to_hr = posts[1]
    assert to_hr.params["channel"] == HR_CHANNEL
    assert f"from <@{ASKER}>:" in to_hr.text  # the asker consented to being named
    # the core drops invisible characters, so the inert forms arrive as "@ channel" and stay inert; a
    # person the asker mentioned is a placeholder from the start (only the asker consented to be named)
    assert "> Can I post photos of @ channel and [someone] at @ hr-team?" in to_hr.text
    for ping in ("<!channel>", "<@U0OTHER99", "<!subteam"):
        assert ping not in to_hr.text
    [sent] = await bot.fake.wait_for("response_url")
    assert sent.params["response_type"] == "ephemeral"
    assert sent.params["replace_original"] is False
    assert "EN escalation_sent" in sent.text


async def test_a_markdown_link_the_asker_typed_is_not_a_live_link_in_the_hr_post(bot: Policybot) -> None:
    await bot.dm("Is [Payroll form](https://evil.example/login) safe to open? @here")
    [answer] = await bot.fake.wait_for("chat.postMessage")

    await bot.click(answer, "ask_hr")
    to_hr = (await bot.fake.wait_for("chat.postMessage", n=2))[1]
    assert to_hr.params["channel"] == HR_CHANNEL
    assert "[Payroll form](https://evil.example/login)" in to_hr.text  # shown as typed
    assert "<https://evil.example" not in to_hr.text  # no link posted in the bot's name
    assert "<!" not in to_hr.text and "@here" not in to_hr.text


async def test_ask_hr_tells_the_user_when_the_hr_channel_cannot_be_reached(bot: Policybot) -> None:
    await bot.dm("bananas")  # a fallback: nothing matched, "Ask HR" is the way on
    [fallback] = await bot.fake.wait_for("chat.postMessage")
    assert "EN fallback" in fallback.text
    assert action_ids(fallback) == ["ask_hr"]

    bot.fake.fail_next("chat.postMessage", error="not_in_channel")
    await bot.click(fallback, "ask_hr")
    [failed] = await bot.fake.wait_for("response_url")
    assert "EN escalation_failed" in failed.text


async def test_without_an_hr_channel_there_is_no_ask_hr_button(start_bot: StartBot) -> None:
    bot = await start_bot(hr_channel=None)
    await bot.dm("Can I add my manager on Facebook?")
    [answer] = await bot.fake.wait_for("chat.postMessage")
    assert action_ids(answer) == ["related_0", "feedback_yes", "feedback_no"]


# ----------------------------------------------------------------------------------- App Home


@pytest.mark.parametrize(
    ("locale", "help_text", "topic"),
    [("nb-NO", "NB help", "Bilder og video på jobben"), ("en-US", "EN help", "Photos and video at work")],
)
async def test_app_home_shows_help_and_topics_in_the_user_s_slack_language(
    bot: Policybot, locale: str, help_text: str, topic: str
) -> None:
    bot.fake.users[ASKER] = {"id": ASKER, "name": "kari", "locale": locale}
    await bot.event(payload("app_home_opened"))

    [home] = await bot.fake.wait_for("views.publish")
    assert home.params["user_id"] == ASKER
    assert home.params["view"]["type"] == "home"
    assert help_text in home.text
    assert topic in home.text
    [lookup] = bot.fake.calls_to("users.info")
    assert lookup.params["include_locale"] in ("1", "true", True)


# ------------------------------------------------------------------------------ what is ignored


@pytest.mark.parametrize(
    "overrides",
    [
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"edited": {"user": ASKER, "ts": "1700000130.000000"}},
        {"subtype": "bot_message", "bot_id": "B0OTHERBOT"},
        {"bot_id": "B0OTHERBOT", "user": "U0OTHERBOT"},
        {"subtype": "file_share", "bot_id": "B0OTHERBOT", "user": "U0OTHERBOT"},
        {"user": BOT_USER_ID},
        {"channel_type": "channel"},
    ],
    ids=["edit", "delete", "edited", "bot_message", "other_bot", "other_bot_file", "own_message", "not_a_dm"],
)
async def test_edits_deletions_bots_and_its_own_messages_get_no_answer(
    bot: Policybot, overrides: dict[str, Any]
) -> None:
    assert await bot.dm("Can I add my manager on Facebook?", **overrides) == 200
    await bot.fake.settle()
    assert bot.fake.count("chat.postMessage") == 0


async def test_an_edited_mention_is_not_answered_again(bot: Policybot) -> None:
    assert await bot.event(payload("app_mention")) == 200
    await bot.fake.wait_for("chat.postMessage")

    assert await bot.event(payload("app_mention_edited")) == 200  # a new event id, with `edited`
    await bot.fake.settle()
    assert bot.fake.count("chat.postMessage") == 1


async def test_a_mention_costs_two_store_round_trips_before_its_answer(bot: Policybot) -> None:
    """The event id's claim, the message's (against answering an edit again) and the question kept in
    progress go in one transaction; its "posting" mark in a second, just before the answer is sent (so
    that a crash never repeats an answer that may be out); the question is written after the answer
    (here by the read that shows it, before that read's own transaction)."""
    transactions: list[int] = []  # answers posted when each transaction of the store's writes began

    def begun(_connection: object) -> None:
        transactions.append(bot.fake.count("chat.postMessage"))

    event.listen(bot.store.write_engine, "begin", begun)
    try:
        assert await bot.event(payload("app_mention")) == 200
        await bot.fake.wait_for("chat.postMessage")
        assert transactions == [0, 0]
        assert [q["question"] for q in await bot.store.questions()] == ["Can I add my manager on Facebook?"]
        assert transactions == [0, 0, 1, 1]
    finally:
        event.remove(bot.store.write_engine, "begin", begun)


async def test_a_mention_added_by_editing_a_message_is_answered_once(bot: Policybot) -> None:
    edited = payload("app_mention_edited")  # the first the bot hears of this message
    assert await bot.event(edited) == 200
    [answer] = await bot.fake.wait_for("chat.postMessage")
    assert answer.params["thread_ts"] == edited["event"]["ts"]
    assert "Yes, you may — but you never have to." in answer.text

    edited_again = copy.deepcopy(edited) | {"event_id": "Ev0MENTION3"}
    edited_again["event"]["edited"] = {"user": ASKER, "ts": "1700000260.000000"}
    assert await bot.event(edited_again) == 200
    await bot.fake.settle()
    assert bot.fake.count("chat.postMessage") == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"subtype": "file_share", "files": [{"id": "F0PHOTO01", "name": "office.jpg"}]},
        {"subtype": "thread_broadcast", "thread_ts": "1700000050.000050"},
    ],
    ids=["file_share", "thread_broadcast"],
)
async def test_a_direct_message_with_a_file_or_also_sent_from_a_thread_is_answered(
    bot: Policybot, overrides: dict[str, Any]
) -> None:
    await bot.dm("Can I post this photo from work?", **overrides)

    [answer] = await bot.fake.wait_for("chat.postMessage")
    assert answer.params["channel"] == "D0ASKER01"
    assert "Check that no customer, colleague or screen" in answer.text


# --------------------------------------------------------------------------------- reliability


async def test_a_retried_event_is_answered_once_but_a_retry_whose_original_was_lost_is_answered(
    bot: Policybot,
) -> None:
    first = payload("message_im")
    assert await bot.event(first) == 200
    assert await bot.event(first, retry=1) == 200
    assert await bot.event(first, retry=2) == 200
    await bot.fake.wait_for("chat.postMessage")
    await bot.fake.settle()
    assert bot.fake.count("chat.postMessage") == 1

    only_the_retry_arrived = payload("message_im") | {"event_id": "Ev0LOSTFIRST"}
    assert await bot.event(only_the_retry_arrived, retry=1) == 200
    await bot.fake.wait_for("chat.postMessage", n=2)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        signed("{}", secret="not-the-signing-secret"),
        "stale",
    ],
    ids=["unsigned", "wrong_signature", "stale_timestamp"],
)
async def test_unsigned_wrongly_signed_and_stale_requests_get_401_and_cause_nothing(
    bot: Policybot, headers: dict[str, str] | str
) -> None:
    body = json.dumps(payload("message_im"))
    if headers == "stale":
        headers = signed(body, timestamp=int(time.time()) - 6 * 60)
    elif headers:
        headers = signed(body, secret="not-the-signing-secret")
    assert isinstance(headers, dict)
    status, _ = await bot.post(body, "application/json", headers)
    assert status == 401
    await bot.fake.settle()
    assert bot.fake.calls == []
    # the event id was not claimed either: the genuine delivery is still answered
    await bot.event(payload("message_im"))
    await bot.fake.wait_for("chat.postMessage")


async def test_a_429_waits_the_retry_after_and_then_posts_the_answer(bot: Policybot) -> None:
    bot.fake.fail_next("chat.postMessage", status=429, retry_after=1)
    await bot.dm("Can I add my manager on Facebook?")

    limited, answer = await bot.fake.wait_for("chat.postMessage", n=2, timeout=8)
    assert answer.at - limited.at >= 1.0
    assert answer.params == limited.params


async def test_a_dropped_connection_is_retried(bot: Policybot) -> None:
    bot.fake.fail_next("chat.postMessage", disconnect=True)
    await bot.dm("Can I add my manager on Facebook?")
    [answer] = await bot.fake.wait_for("chat.postMessage")
    assert "Yes, you may" in answer.text


async def test_other_web_api_errors_are_logged_without_the_token(
    bot: Policybot, caplog: pytest.LogCaptureFixture
) -> None:
    bot.fake.fail_next("chat.postMessage", error="channel_not_found")
    with caplog.at_level(logging.DEBUG):
        await bot.dm("Can I add my manager on Facebook?")
        await bot.fake.wait_for("chat.postMessage")
        await bot.fake.settle()
    assert "chat.postMessage failed: channel_not_found" in caplog.text
    assert BOT_TOKEN not in caplog.text
    assert bot.fake.count("chat.postMessage") == 1  # not retried: it would fail again


async def test_healthz_reports_the_knowledge_version_and_slack(bot: Policybot) -> None:
    async with bot.http.get(bot.url + "/healthz") as response:
        health = await response.json()
    assert health["status"] == "ok"
    assert health["platforms"] == ["slack"]
    assert health["knowledge_version"]


# ------------------------------------------------------------------------------- text handling


def test_incoming_text_loses_the_bot_mention_and_slack_escapes() -> None:
    text = f"<@{BOT_USER_ID}> can I share Q&amp;A on <https://example.com|our blog> in <#C0GENERAL|general>?"
    assert incoming_text(text, BOT_USER_ID) == "can I share Q&A on our blog in #general?"


def test_incoming_text_puts_placeholders_for_people_mail_links_and_unnamed_channels() -> None:
    text = "may <@U0PER1234> and <@U0OLA1234|ola> see <mailto:per@example.com|Per Olsen> in <#C0SECRET1>?"
    assert incoming_text(text, BOT_USER_ID) == "may [someone] and [someone] see [email] in [channel]?"


# ------------------------------------------------------------------------------- start-up (CLI)


@pytest.mark.parametrize(
    ("env", "args", "missing"),
    [
        ({"SLACK_BOT_TOKEN": BOT_TOKEN}, [], "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": SECRET}, [], "SLACK_BOT_TOKEN"),
        (
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET},
            ["--slack-socket-mode"],
            "SLACK_APP_TOKEN",
        ),
    ],
    ids=["token_without_secret", "secret_without_token", "socket_mode_without_app_token"],
)
def test_half_configured_slack_stops_serve_with_a_message_naming_what_is_missing(
    tmp_path: Path, env: dict[str, str], args: list[str], missing: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "serve", "--port", str(free_port()), *args],
        env=cli_env(tmp_path, **env), capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert missing in result.stderr


@dataclass
class Served:
    """`policybot serve` running in a subprocess against the fake Slack API."""

    process: asyncio.subprocess.Process
    bot: Policybot
    health: dict[str, Any]

    async def stop(self, timeout: float = 10) -> str:  # noqa: ASYNC109 (reads best in tests)
        """SIGTERM, as a deploy sends it; returns what the server logged. It must exit cleanly."""
        self.process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(self.process.communicate(), timeout)
        assert self.process.returncode == 0, stderr.decode()
        return stderr.decode()


@contextlib.asynccontextmanager
async def policybot_serve(tmp_path: Path, slack_api: FakeSlackApi) -> AsyncIterator[Served]:
    port = free_port()
    env = cli_env(
        tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack_api.api_url
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            health = await wait_until_serving(http, port, process=process)
            yield Served(process, Policybot(url, slack_api, None, http), health)  # type: ignore[arg-type]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_policybot_serve_answers_and_stops_cleanly_on_sigterm(
    tmp_path: Path, slack_api: FakeSlackApi
) -> None:
    async with policybot_serve(tmp_path, slack_api) as served:
        assert served.health["platforms"] == ["slack"]
        assert await served.bot.dm("Can I add my manager on Facebook?") == 200
        [answer] = await slack_api.wait_for("chat.postMessage")
        assert "Yes, you may" in answer.text

        assert "shutting down" in await served.stop()


async def test_an_answer_in_progress_when_serve_is_stopped_is_still_posted(
    tmp_path: Path, slack_api: FakeSlackApi
) -> None:
    """A deploy's SIGTERM right after the ack: Slack won't resend the event, so the answer must not be lost.

    Slack rate-limits the answer for a second; the server is told to stop while it waits to retry.
    """
    async with policybot_serve(tmp_path, slack_api) as served:
        slack_api.fail_next("chat.postMessage", status=429, retry_after=1)
        assert await served.bot.dm("Can I add my manager on Facebook?") == 200
        await slack_api.wait_for("chat.postMessage")  # the rate-limited first try

        await served.stop(timeout=15)

    first, retry = slack_api.calls_to("chat.postMessage")
    assert retry.params == first.params
    assert "Yes, you may" in retry.text


async def test_questions_answered_just_before_a_sigterm_are_all_in_the_database(
    tmp_path: Path, slack_api: FakeSlackApi
) -> None:
    """Questions are written after their answers, in batches (bot/group_commit.py): a deploy's SIGTERM
    right after a burst of answers must still leave every one of them in the database for HR."""
    async with policybot_serve(tmp_path, slack_api) as served:
        for n in range(12):
            body = payload("message_im") | {"event_id": f"Ev0DRAIN{n:02d}"}
            assert (
                await served.bot.event(body, ts=f"1700000200.{n:06d}", text=f"Can I post photos {n}?") == 200
            )
        await slack_api.wait_for("chat.postMessage", n=12)
        await served.stop()

    store = await Store.open(f"sqlite:///{tmp_path}/cli.db")
    try:
        asked = sorted(q["question"] for q in await store.questions())
    finally:
        await store.close()
    assert asked == sorted(f"Can I post photos {n}?" for n in range(12))


async def test_starting_with_the_token_in_the_environment_logs_no_warning_about_it(
    start_bot: StartBot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)  # as under `policybot serve`: bolt reads it too
    with caplog.at_level(logging.WARNING):
        bot = await start_bot()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert await bot.dm("Can I add my manager on Facebook?") == 200
    [answer] = await bot.fake.wait_for("chat.postMessage")
    assert answer.token == BOT_TOKEN  # the client the bot was given is the one that answers


async def test_the_weekly_review_notice_reaches_the_hr_channel(
    tmp_path: Path, slack_api: FakeSlackApi
) -> None:
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack_api.api_url,
        "POLICYBOT_HR_CHANNEL": HR_CHANNEL,
    }
    store = await Store.open(f"sqlite:///{tmp_path}/policybot.db")
    try:
        kb = await load_knowledge(write_kb(tmp_path / "knowledge"))  # friend-manager: reviewed 2026-11-01
        services = Services.assemble(Settings.from_env(env), Conversation(kb), store)
        assert services.slack is not None  # the composition root wired the Slack HR channel to the notice

        monday = datetime(2028, 5, 15, 9, 30, tzinfo=ZoneInfo("Europe/Oslo"))
        assert await services.review.run_once(monday) is True
    finally:
        await store.close()

    [notice] = await slack_api.wait_for("chat.postMessage")
    assert notice.params["channel"] == HR_CHANNEL
    assert "1 answer(s) were last reviewed more than 12 months ago" in notice.text
    assert "Adding your manager on social media (`friend-manager`): 2026-11-01" in notice.text
