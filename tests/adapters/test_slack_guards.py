"""Slack's endpoint before bolt, end to end: whatever arrives unsigned is a 401 before anything is read,
whatever arrives signed but malformed is a 400, and nothing is ever a 500 or a traceback in the log.

Every request goes over real HTTP to the running server (tests/adapters/slack_harness.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.adapters.hostile_requests import leave_before_the_body_ends, variants
from tests.adapters.slack_harness import ASKER, Policybot, StartBot, payload, signed

DEEP = "[" * 100_000 + "]" * 100_000
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def bot(start_bot: StartBot, caplog: pytest.LogCaptureFixture) -> Policybot:
    caplog.set_level(logging.INFO)
    return await start_bot()


def trouble(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the log holds that an operator would take for the server failing: errors and tracebacks."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# --------------------------------------------------------------------------------- before the signature

HOSTILE_BODIES: dict[str, tuple[str | bytes, str]] = {
    "not JSON": ("{not json", JSON),
    "not UTF-8": (b'{"type": "event_callback", "x": "\xff\xfe"}', JSON),
    "a bogus charset": (json.dumps(payload("message_im")), "application/json; charset=x-bogus"),
    "100,000 levels deep": (DEEP, JSON),
    "a form with a bad payload": ("payload=%7Bnot+json", FORM),
}


@pytest.mark.parametrize("body,content_type", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
async def test_an_unsigned_request_is_401_whatever_its_body_holds(
    bot: Policybot, caplog: pytest.LogCaptureFixture, body: str | bytes, content_type: str
) -> None:
    status, _ = await bot.post(body, content_type, {})

    assert status == 401
    assert trouble(caplog) == []


BAD_HEADERS: dict[str, dict[str, str]] = {
    "a timestamp that is not a number": {"X-Slack-Request-Timestamp": "abc"},
    "a timestamp in exponent form": {"X-Slack-Request-Timestamp": "1.7e9"},
    "a negative timestamp": {"X-Slack-Request-Timestamp": "-1"},
    "a signature of another scheme": {"X-Slack-Signature": "v1=00"},
    "a signature that is not hex": {"X-Slack-Signature": "v0=" + "z" * 64},
    "a signature with a latin-1 letter": {"X-Slack-Signature": "v0=" + "é" * 64},
}


@pytest.mark.parametrize("bad", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
async def test_a_malformed_signature_header_is_401_and_answers_nothing(
    bot: Policybot, caplog: pytest.LogCaptureFixture, bad: dict[str, str]
) -> None:
    body = json.dumps(payload("message_im"))

    status, _ = await bot.post(body, JSON, signed(body) | bad)

    assert status == 401
    assert trouble(caplog) == []
    await bot.fake.settle()
    assert bot.fake.calls == []


async def test_a_forged_request_leaves_nothing_of_itself_in_the_log(
    bot: Policybot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps(payload("message_im"))  # Kari's DM (her user id, her DM channel, her question)

    status, _ = await bot.post(body, JSON, signed(body, secret="not-the-signing-secret"))

    assert status == 401
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "signature" in logged  # the operator is told a request was refused …
    for private in (ASKER, "D0ASKER01", "Can I add my manager", "Ev0IM00001"):
        assert private not in logged  # … and nothing of what it carried


async def test_a_body_over_1_mib_is_413_before_it_is_read_whole(
    bot: Policybot, caplog: pytest.LogCaptureFixture
) -> None:
    body = b'{"type": "event_callback", "x": "' + b"a" * 2_000_000 + b'"}'
    sent = {"Content-Type": JSON, **signed(body)}

    async with bot.http.post(bot.url + "/slack/events", data=io.BytesIO(body), headers=sent) as response:
        assert response.status == 413
    assert trouble(caplog) == []


async def test_a_client_that_leaves_before_its_body_ends_leaves_no_traceback(
    bot: Policybot, caplog: pytest.LogCaptureFixture
) -> None:
    head = b'POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"type": '
    await leave_before_the_body_ends(bot.url, head)

    assert trouble(caplog) == []
    assert any("ended before its body did" in r.getMessage() for r in caplog.records)


async def test_a_header_line_over_8_kib_is_400_without_a_traceback(
    bot: Policybot, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = bot.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    with contextlib.suppress(ConnectionError):  # closed, not left for the garbage collector
        await writer.wait_closed()

    assert status_line.startswith(b"HTTP/1.0 400") or status_line.startswith(b"HTTP/1.1 400")
    assert trouble(caplog) == []
    assert any("LineTooLong" in r.getMessage() for r in caplog.records)  # one line, no traceback


# ----------------------------------------------------------------------------- signed but malformed


SIGNED_MALFORMED: dict[str, tuple[str | bytes, str]] = {
    "not JSON": ("{not json", JSON),
    "not UTF-8": (b'{"type": "event_callback", "x": "\xff\xfe"}', JSON),
    "100,000 levels deep": (DEEP, JSON),
    "an object 60 levels deep": ('{"type": "event_callback", "x": ' + "[" * 60 + "]" * 60 + "}", JSON),
    "a JSON array": ("[1, 2]", JSON),
    "a JSON string": ('"hello"', JSON),
    "JSON null": ("null", JSON),
    "an event that is a string": ('{"type": "event_callback", "event_id": "Ev1", "event": "boom"}', JSON),
    "an event without a type": ('{"type": "event_callback", "event_id": "Ev1", "event": {"type": 5}}', JSON),
    "a form payload that is not JSON": ("payload=%7Bnot+json", FORM),
    "a form payload that is an array": ("payload=%5B1%2C2%5D", FORM),
    "a form payload that is not UTF-8": ("payload=%FF%FE", FORM),
    "a form payload 100,000 levels deep": (urlencode({"payload": DEEP}), FORM),
    "a body that is not UTF-8 at all": (b"\xff\xfe\xfd", FORM),
}


@pytest.mark.parametrize("body,content_type", SIGNED_MALFORMED.values(), ids=SIGNED_MALFORMED.keys())
async def test_a_signed_but_malformed_request_is_400_and_answers_nothing(
    bot: Policybot, caplog: pytest.LogCaptureFixture, body: str | bytes, content_type: str
) -> None:
    status, _ = await bot.post(body, content_type, signed(body))

    assert status == 400
    assert trouble(caplog) == []
    await bot.fake.settle()
    assert bot.fake.calls == []


async def test_a_signed_event_with_a_bogus_charset_is_read_as_the_utf_8_slack_sends(
    bot: Policybot, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps(payload("message_im") | {"event_id": "Ev0CHARSET"}, ensure_ascii=False)

    status, _ = await bot.post(body, "application/json; charset=x-bogus", signed(body))

    assert status == 200
    [answer] = await bot.fake.wait_for("chat.postMessage")
    assert "Yes, you may" in answer.text
    assert trouble(caplog) == []


async def test_slack_s_url_check_is_answered_when_signed_and_refused_when_not(bot: Policybot) -> None:
    body = json.dumps(
        {
            "token": "legacy",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )

    assert await bot.post(body, JSON, {}) == (401, '{"error": "invalid request signature"}')
    status, answer = await bot.post(body, JSON, signed(body))
    assert (status, json.loads(answer)) == (200, {"challenge": json.loads(body)["challenge"]})


async def test_a_slash_command_with_the_word_payload_in_it_is_answered(bot: Policybot) -> None:
    # bolt takes any form body containing "payload" for an interaction and reads it as empty (a 404)
    status, _, _ = await bot.command("Can I post photos of the payload bay?", bot.fake.response_url("ask"))

    assert status == 200
    [answer] = await bot.fake.wait_for("response_url")
    assert "Check that no customer, colleague or screen is in the picture" in answer.text


# Values of the wrong type for the fields bolt or the adapter reads: each answered 4xx or acknowledged,
# never a 500, and never a traceback (also not from the listener after the acknowledgement).
def named(body: dict[str, Any], tag: str) -> None:
    if "event_id" in body:
        body["event_id"] = f"Ev{tag}"


async def test_fields_of_the_wrong_type_are_never_a_500_nor_a_traceback(
    bot: Policybot, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.perf_counter()
    im, mention = payload("message_im"), payload("app_mention")
    vote, ask = payload("block_actions"), payload("block_actions")
    vote["actions"][0] |= {"action_id": "feedback_yes", "value": '{"e": "friend-manager", "l": "en"}'}
    ask["actions"][0] |= {"action_id": "ask_hr", "value": '{"q": "Can I post photos?", "l": "en"}'}
    for click in (vote, ask):
        click["response_url"] = bot.fake.response_url("click")
    cases = [
        *variants(
            im,
            "type",
            "event",
            "event_id",
            "team_id",
            "authorizations",
            "authorizations.0.team_id",
            name=named,
        ),
        *variants(im, "event.type", "event.user", "event.channel", "event.text", "event.ts", name=named),
        *variants(im, "event.thread_ts", "event.subtype", "event.channel_type", "event.bot_id", name=named),
        *variants(
            mention, "event.user", "event.channel", "event.ts", "event.edited", "event.team", name=named
        ),
        *variants(vote, "user", "channel", "team", "actions", "actions.0", "actions.0.value", name=named),
        *variants(
            vote, "actions.0.action_id", "container", "message", "message.blocks", "response_url", name=named
        ),
        *variants(vote, "view", "enterprise", "is_enterprise_install", "container.is_ephemeral", name=named),
        *variants(ask, "user", "user.id", "channel", "actions.0.value", "container.channel_id", name=named),
    ]
    statuses: dict[str, int] = {}
    for name, body in cases:
        if "actions" in body:
            form = urlencode({"payload": json.dumps(body)})
            statuses[name], _ = await bot.post(form, FORM, signed(form))
        else:
            text = json.dumps(body)
            statuses[name], _ = await bot.post(text, JSON, signed(text))
    await bot.fake.settle(0.5)

    assert {name: status for name, status in statuses.items() if status >= 500} == {}
    assert set(statuses.values()) <= {200, 400, 404}
    assert trouble(caplog) == []
    assert len(cases) > 250 and time.perf_counter() - started < 30
