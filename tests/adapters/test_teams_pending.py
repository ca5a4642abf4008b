"""No acknowledged Teams question is lost: another process took the message and died before answering.

The dead process is played by a `Claims` of its own on the server's database: it claimed the message
the way the Teams adapter does, with what answering it needs, and never answered. Teams' redelivery is
sent to the real server (tests/adapters/teams_harness.py); the server's sweeper is run by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.server import SERVICES
from bot.claims import Claims, Hold
from tests.adapters.teams_harness import PERSONAL, Policybot, activity, start_policybot
from tests.fakes.bot_connector import FakeBotConnector

LEASE = 0.3
QUESTION = "Can I add my manager on Facebook?"


@pytest.fixture
async def policybot(
    tiny_kb_dir: Path, tmp_path: Path, bot_connector: FakeBotConnector
) -> AsyncIterator[Policybot]:
    env = {
        "POLICYBOT_ENV": "development",
        "POLICYBOT_ANSWER_LEASE_SECONDS": str(LEASE),
        "POLICYBOT_PENDING_SWEEP_SECONDS": "0.1",
    }
    async with start_policybot(env, tiny_kb_dir, tmp_path, bot_connector) as running:
        yield running


def reference(connector: FakeBotConnector) -> dict[str, Any]:
    """The personal chat's conversation reference, as the Teams adapter keeps it: no user, no activity."""
    return {
        "bot": {"id": "28:policybot-app", "name": "policybot"},
        "conversation": {"id": PERSONAL, "conversationType": "personal", "tenantId": "tenant-1"},
        "channelId": "msteams",
        "locale": "en-US",
        "serviceUrl": connector.url,
    }


async def taken_by_a_process_that_died(policybot: Policybot, message_id: str) -> None:
    dead = Claims(policybot.store, lease=timedelta(seconds=LEASE))
    hold = Hold("teams", reference(policybot.connector), QUESTION, "en")
    assert await dead.claim(f"teams:{PERSONAL}:{message_id}", hold=hold)


async def test_a_redelivered_message_is_answered_once_its_lease_has_expired(policybot: Policybot) -> None:
    await taken_by_a_process_that_died(policybot, "1700000000001")
    message = activity("personal_message", policybot.connector)

    status, _ = await policybot.post(message)  # Teams resends: the message is being answered
    assert status == 200
    assert policybot.connector.calls == []

    await asyncio.sleep(LEASE)
    status, _ = await policybot.post(message)
    assert status == 200
    [call] = policybot.connector.calls
    assert (call.conversation_id, call.activity_id) == (PERSONAL, "1700000000001")  # in the turn
    assert call.card_texts()[1].startswith("Yes, you may")

    await policybot.post(message)
    assert len(policybot.connector.calls) == 1
    assert await policybot.store.pending_count() == 0


async def test_a_message_its_process_left_unanswered_is_sent_to_the_chat_by_the_sweeper_once(
    policybot: Policybot,
) -> None:
    await taken_by_a_process_that_died(policybot, "1700000000077")
    sweeper = policybot.app[SERVICES].sweeper
    assert await sweeper.sweep() == 0  # the lease is live

    await asyncio.sleep(LEASE)
    assert await sweeper.sweep() == 1
    [call] = policybot.connector.calls
    assert (call.method, call.conversation_id, call.activity_id) == ("POST", PERSONAL, None)  # a new message
    assert call.card_texts()[1].startswith("Yes, you may")
    assert await sweeper.sweep() == 0
    assert len(policybot.connector.calls) == 1
