"""The Slack tip deliverer (adapters/slack_web.py) against the fake Slack Web API: what it posts, and
which failures it reports as worth retrying.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.slack_web import SlackDeliverer, web_client
from bot.config import SlackSettings
from bot.conversation import Conversation
from bot.errors import DeliveryError
from bot.knowledge_loader import load_knowledge
from bot.tips import Target
from tests.adapters.slack_harness import SECRET, free_port
from tests.fakes.slack_api import BOT_TOKEN, FakeSlackApi


async def test_the_slack_deliverer_posts_a_tip_and_says_which_failures_are_worth_retrying(
    slack_api: FakeSlackApi, tiny_kb_dir: Path
) -> None:
    conversation = Conversation(await load_knowledge(tiny_kb_dir))
    deliverer = SlackDeliverer(web_client(SlackSettings(BOT_TOKEN, SECRET, api_url=slack_api.api_url)))
    target = Target("slack", "C0TIPS", "nb")
    tip = conversation.tip("nb", "photo-check")

    await deliverer.deliver(target, tip)
    [posted] = slack_api.calls_to("chat.postMessage")
    assert posted.params["channel"] == "C0TIPS"
    assert "Før du legger ut et bilde fra jobben" in posted.text
    assert [b["text"]["text"] for b in posted.buttons] == ["Bilder og video på jobben"]  # the tip's entry

    for error in ("channel_not_found", "is_archived", "not_in_channel"):
        slack_api.fail_next("chat.postMessage", error=error)
        with pytest.raises(DeliveryError, match=error) as refused:
            await deliverer.deliver(target, tip)
        assert refused.value.retryable is False
    slack_api.fail_next("chat.postMessage", status=500)
    with pytest.raises(DeliveryError) as failed:
        await deliverer.deliver(target, tip)
    assert failed.value.retryable is True
    # (the client of the server waits out a 429 itself; without retries the scheduler gets the hint)
    impatient = SlackDeliverer(
        web_client(SlackSettings(BOT_TOKEN, SECRET, api_url=slack_api.api_url), retries=0)
    )
    slack_api.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(DeliveryError) as limited:
        await impatient.deliver(target, tip)
    assert (limited.value.retryable, limited.value.retry_after) == (True, 7.0)


async def test_the_slack_deliverer_reports_an_unreachable_slack_as_retryable(tiny_kb_dir: Path) -> None:
    conversation = Conversation(await load_knowledge(tiny_kb_dir))
    closed = f"http://127.0.0.1:{free_port()}/api/"
    deliverer = SlackDeliverer(web_client(SlackSettings(BOT_TOKEN, SECRET, api_url=closed), retries=0))
    with pytest.raises(DeliveryError, match="could not reach Slack") as failure:
        await deliverer.deliver(Target("slack", "C0TIPS", "en"), conversation.tip("en"))
    assert failure.value.retryable is True
