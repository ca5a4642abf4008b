"""Teams and the HR channel: the bot reaches it (also when it is not the team's General channel), and HR
answers an "Ask HR" question in its channel thread, and the employee gets the answer.

Same set-up as test_teams.py: the real server at /api/messages, the fake Bot Connector recording what
the bot sends.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botbuilder.schema import ConversationReference

from adapters.teams import TEAMS_BOT
from adapters.teams_delivery import TeamsDeliverer
from bot.config import TeamsSettings
from tests.adapters.teams_harness import (
    CHANNEL,
    HR_CONVERSATION,
    PERSONAL,
    Policybot,
    activity,
    start_policybot,
)
from tests.conftest import ENTRIES
from tests.fakes.bot_connector import ConnectorCall, FakeBotConnector


@pytest.fixture
async def bot(
    tiny_kb_dir: Path,
    tmp_path: Path,
    bot_connector: FakeBotConnector,
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


# ------------------------------------------------------------------- reaching an HR channel of a team

KARI = "6b1f7c1e-0000-4000-8000-00000000000a"  # the sender of payloads/teams/personal_message.json


@pytest.fixture
async def admin_bot(
    tiny_kb_dir: Path,
    tmp_path: Path,
    bot_connector: FakeBotConnector,
) -> AsyncIterator[Policybot]:
    """As `bot`, with Kari an HR admin (she may `reload`)."""
    env = {
        "POLICYBOT_ENV": "development",
        "POLICYBOT_HR_TEAMS_CONVERSATION": HR_CONVERSATION,
        "POLICYBOT_ADMINS": KARI,
    }
    async with start_policybot(env, tiny_kb_dir, tmp_path, bot_connector) as running:
        yield running


async def install_in_team(
    bot: Policybot,
    general: str = CHANNEL,
    tenant: str = "tenant-1",
    connector: FakeBotConnector | None = None,
) -> None:
    """The bot is added to a team; Teams tells it in the team's General channel (`general`), from the
    Bot Connector `connector` (the bot's own fake by default)."""
    body = activity("install_team", connector or bot.connector, id=f"install-{general}")
    body["conversation"]["id"] = body["channelData"]["team"]["id"] = general
    body["conversation"]["tenantId"] = body["channelData"]["tenant"]["id"] = tenant
    assert (await bot.post(body))[0] == 200


async def reload_a_broken_edit(bot: Policybot, kb_dir: Path) -> None:
    """HR saves a date that is not one, and an admin types `reload` to the bot."""
    (kb_dir / "entries.yaml").write_text(
        ENTRIES.replace("reviewed: 2026-11-01", "reviewed: 1 November"), encoding="utf-8"
    )
    assert (await bot.post(activity("personal_message", bot.connector, text="reload", id="reload")))[0] == 200
    [answer] = bot.connector.calls_to(PERSONAL)
    assert answer.text is not None and answer.text.startswith("EN reload_failed 1")


async def test_a_rejected_edit_reaches_an_hr_channel_that_is_not_the_team_s_general_channel(
    admin_bot: Policybot, tiny_kb_dir: Path
) -> None:
    await install_in_team(admin_bot)  # the HR team: the bot only ever hears of its General channel

    await reload_a_broken_edit(admin_bot, tiny_kb_dir)

    [note] = admin_bot.connector.calls_to(HR_CONVERSATION)
    assert (note.method, note.activity_id) == ("POST", None)  # a new post in the HR channel
    assert note.text is not None and note.text.startswith("EN reload_failed 1\n")
    assert note.activity["conversation"]["tenantID"] == "tenant-1"  # the team's tenant
    assert admin_bot.connector.calls_to(CHANNEL) == []  # not posted in General instead


async def test_with_several_teams_of_one_tenant_any_of_them_addresses_the_hr_channel(
    admin_bot: Policybot, tiny_kb_dir: Path
) -> None:
    await install_in_team(admin_bot, "19:general-sales@thread.tacv2")
    await install_in_team(admin_bot)

    await reload_a_broken_edit(admin_bot, tiny_kb_dir)

    [note] = admin_bot.connector.calls_to(HR_CONVERSATION)
    assert note.text is not None and note.text.startswith("EN reload_failed 1\n")


async def test_ask_hr_reaches_the_hr_channel_through_the_installed_team(admin_bot: Policybot) -> None:
    await install_in_team(admin_bot)
    value = {"policybot": "ask_hr", "lang": "en", "question": "Can I blog about work?"}

    await admin_bot.post(activity("card_action", admin_bot.connector, value=value))

    [to_hr] = admin_bot.connector.calls_to(HR_CONVERSATION)
    assert to_hr.text is not None and to_hr.text.startswith("EN escalation_to_hr Can I blog about work?")
    assert to_hr.activity["conversation"]["tenantID"] == "tenant-1"
    assert [c.text for c in to_employee(admin_bot)] == ["EN escalation_sent"]


async def test_teams_in_several_tenants_are_not_guessed_between_and_the_log_says_so(
    admin_bot: Policybot, tiny_kb_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.teams_delivery")
    await install_in_team(admin_bot, "19:general-a@thread.tacv2", "tenant-a")
    await install_in_team(admin_bot, "19:general-b@thread.tacv2", "tenant-b")

    await reload_a_broken_edit(admin_bot, tiny_kb_dir)

    assert admin_bot.connector.calls_to(HR_CONVERSATION) == []
    assert "several tenants" in caplog.text and HR_CONVERSATION in caplog.text


async def test_without_the_bot_in_any_team_the_log_says_to_add_it_to_the_hr_team(
    admin_bot: Policybot, tiny_kb_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.teams_delivery")

    await reload_a_broken_edit(admin_bot, tiny_kb_dir)

    assert admin_bot.connector.calls_to(HR_CONVERSATION) == []
    assert "add policybot to the team" in caplog.text


# ------------------------------------------------------------------- Ask HR from one tenant or another

TENANT_A, TENANT_B = "tenant-a", "tenant-b"


def ask_hr_from(tenant: str, connector: FakeBotConnector) -> dict[str, Any]:
    """Kari presses "Ask HR" in her personal chat in `tenant`, whose Bot Connector is `connector`."""
    value = {"policybot": "ask_hr", "lang": "en", "question": "Can I blog about work?"}
    body = activity("card_action", connector, id=f"ask-{tenant}", value=value)
    body["conversation"]["tenantId"] = body["channelData"]["tenant"]["id"] = tenant
    return body


@pytest.fixture
async def other_connector() -> AsyncIterator[FakeBotConnector]:
    """A second Bot Connector (the bot's own fake set NO_PROXY for loopback), to tell services apart."""
    async with FakeBotConnector() as connector:
        yield connector


async def test_ask_hr_from_another_tenant_goes_through_the_asker_s_service_never_a_team_of_another_tenant(
    admin_bot: Policybot, other_connector: FakeBotConnector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters")  # teams.py and teams_delivery.py
    await install_in_team(admin_bot, tenant=TENANT_A)  # the only team, through the bot's own connector

    await admin_bot.post(ask_hr_from(TENANT_B, other_connector))

    [to_hr] = other_connector.calls_to(HR_CONVERSATION)  # tenant B's serviceUrl
    assert to_hr.text is not None and to_hr.text.startswith("EN escalation_to_hr Can I blog about work?")
    assert to_hr.activity["conversation"]["tenantID"] == TENANT_B
    assert [c.text for c in other_connector.calls_to(PERSONAL)] == ["EN escalation_sent"]
    assert admin_bot.connector.calls == []  # nothing went through tenant A's team
    assert caplog.text == ""  # the fallback works: nothing to warn about


async def test_ask_hr_from_a_tenant_with_a_team_goes_through_that_team_among_several_tenants(
    admin_bot: Policybot, other_connector: FakeBotConnector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters")  # teams.py and teams_delivery.py
    await install_in_team(admin_bot, "19:general-a@thread.tacv2", TENANT_A)  # via the bot's connector
    await install_in_team(admin_bot, "19:general-b@thread.tacv2", TENANT_B, other_connector)
    asker = FakeBotConnector()  # tenant A's asker comes in through a third service, to tell them apart

    async with asker:
        await admin_bot.post(ask_hr_from(TENANT_A, asker))

    [to_hr] = admin_bot.connector.calls_to(HR_CONVERSATION)  # tenant A's team reference
    assert to_hr.activity["conversation"]["tenantID"] == TENANT_A
    assert other_connector.calls == [] and asker.calls_to(HR_CONVERSATION) == []
    assert [c.text for c in asker.calls_to(PERSONAL)] == ["EN escalation_sent"]
    assert "several tenants" not in caplog.text


async def test_hr_s_reply_reaches_an_asker_of_another_tenant_through_their_service(
    admin_bot: Policybot, other_connector: FakeBotConnector
) -> None:
    await install_in_team(admin_bot, tenant=TENANT_A)
    await admin_bot.post(ask_hr_from(TENANT_B, other_connector))
    [to_hr] = other_connector.calls_to(HR_CONVERSATION)

    await hr_writes(admin_bot, f"{HR_CONVERSATION};messageid={to_hr.response_id}")

    relayed = other_connector.calls_to(PERSONAL)[-1]
    assert relayed.text == "EN hr_reply Yes, blogging is fine if you say the views are your own."
    assert relayed.activity["conversation"]["tenantID"] == TENANT_B


async def test_a_note_to_hr_prefers_a_team_of_the_configured_tenant(
    admin_bot: Policybot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.teams_delivery")
    await install_in_team(admin_bot, "19:general-a@thread.tacv2", TENANT_A)
    await install_in_team(admin_bot, "19:general-b@thread.tacv2", TENANT_B)
    teams = TeamsSettings(app_id="00000000-0000-4000-8000-000000000123", app_password="x", tenant_id=TENANT_B)
    settings = dataclasses.replace(admin_bot.app[TEAMS_BOT].platform.settings, teams=teams)

    found = await TeamsDeliverer(settings, admin_bot.store).hr_reference(HR_CONVERSATION)

    assert found is not None
    reference, _ = found
    assert reference.conversation is not None
    assert (reference.conversation.id, reference.conversation.tenant_id) == (HR_CONVERSATION, TENANT_B)
    assert caplog.text == ""


async def test_personal_chats_are_not_read_when_looking_for_the_hr_channel(
    admin_bot: Policybot, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await admin_bot.post(activity("install_personal", admin_bot.connector)))[0] == 200
    await install_in_team(admin_bot)
    read: list[str] = []
    deserialize = ConversationReference.deserialize

    def spy(data: Any, *args: Any, **kwargs: Any) -> Any:
        read.append(data["conversation"]["conversationType"])
        return deserialize(data, *args, **kwargs)

    monkeypatch.setattr(ConversationReference, "deserialize", spy)

    await admin_bot.post(ask_hr_from("tenant-1", admin_bot.connector))

    assert read == ["channel"]
    assert len(admin_bot.connector.calls_to(HR_CONVERSATION)) == 1


async def test_the_weekly_review_notice_reaches_the_hr_channel_in_teams(admin_bot: Policybot) -> None:
    await install_in_team(admin_bot)  # the HR team
    monday = datetime(
        2028, 5, 15, 9, 30, tzinfo=ZoneInfo("Europe/Oslo")
    )  # friend-manager: reviewed 2026-11-01

    assert await admin_bot.services.review.run_once(monday) is True
    assert await admin_bot.services.review.run_once(monday) is False  # once a week, however often it looks

    [notice] = admin_bot.connector.calls_to(HR_CONVERSATION)
    assert (notice.method, notice.activity_id) == ("POST", None)  # a new post in the HR channel
    assert notice.text is not None
    assert "1 answer(s) were last reviewed more than 12 months ago" in notice.text
    assert "friend-manager" in notice.text and "2026-11-01" in notice.text
