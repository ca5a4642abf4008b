"""The daily tip reaching Teams: a real install activity stores the conversation, then the scheduler
posts there through the Teams deliverer, and the fake Bot Connector records it — once per day."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters import teams
from bot.config import Settings
from bot.store import TipStatus
from bot.tips import TipScheduler
from tests.adapters.teams_harness import CHANNEL, activity, start_policybot
from tests.fakes.bot_connector import FakeBotConnector


def oslo(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2028, 5, day, hour, minute, tzinfo=ZoneInfo("Europe/Oslo")).astimezone(UTC)


async def test_a_scheduled_tip_reaches_every_installed_team_once_a_day(
    tiny_kb_dir: Path,
    tmp_path: Path,
    bot_connector: FakeBotConnector,
) -> None:
    env = {"POLICYBOT_ENV": "development", "POLICYBOT_DEFAULT_LANG": "nb"}
    async with start_policybot(env, tiny_kb_dir, tmp_path, bot_connector) as policybot:
        status, _ = await policybot.post(activity("install_team", bot_connector))
        assert status in (200, 201)
        deliverer = teams.deliverer(policybot.app)
        assert deliverer is not None
        now = oslo(15, 9, 0)  # a Monday, 09:00 in Oslo
        settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'policybot.db'}", **env})
        scheduler = TipScheduler.from_settings(
            settings,
            policybot.store,
            policybot.conversation,
            [deliverer],
            clock=lambda: now,
        )
        bot_connector.calls.clear()  # forget the install's own traffic

        first = await scheduler.run_once()
        now = oslo(15, 11, 0)
        again = await scheduler.run_once()

    assert [(o.target.platform, o.target.id, o.status) for o in first] == [
        ("teams", CHANNEL, TipStatus.POSTED)
    ]
    assert again == []
    [tip] = bot_connector.calls
    assert (tip.method, tip.conversation_id) == ("POST", CHANNEL)
    assert "replyToId" not in tip.activity  # a new post, not a reply to some earlier message
    tips_nb = {t.text["nb"] for t in policybot.conversation.kb.tips}
    assert any(text in " ".join(tip.card_texts()) for text in tips_nb)  # in the stored language
