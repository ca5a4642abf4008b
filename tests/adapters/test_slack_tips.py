"""The daily tip reaching Slack: the scheduler and `policybot tips …` against the fake Slack Web API."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters import cli
from adapters.slack_web import SlackDeliverer, web_client
from bot.config import Settings, SlackSettings
from bot.conversation import Conversation
from bot.knowledge_loader import load_knowledge
from bot.store import Store, TipStatus
from bot.tips import TipScheduler
from tests.fakes.slack_api import BOT_TOKEN, FakeSlackApi


def oslo(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2028, 5, day, hour, minute, tzinfo=ZoneInfo("Europe/Oslo")).astimezone(UTC)


def settings_for(slack_api: FakeSlackApi, tmp_path: Path, kb: Path) -> Settings:
    return Settings(
        knowledge_dir=kb,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'policybot.db'}",
        slack=SlackSettings(bot_token=BOT_TOKEN, signing_secret="s3cret", api_url=slack_api.api_url),
        tip_slack_channels=("C0ARCHIVED", "C0TIPS:nb"),
        tip_time=time(9, 0),
        tip_cutoff=time(12, 0),
    )


async def test_a_scheduled_tip_reaches_the_slack_channels_once(
    slack_api: FakeSlackApi, tiny_kb_dir: Path, tmp_path: Path
) -> None:
    settings = settings_for(slack_api, tmp_path, tiny_kb_dir)
    assert settings.slack is not None
    conversation = Conversation(await load_knowledge(tiny_kb_dir))
    store = await Store.open(settings.database_url)
    now = oslo(15, 9, 0)  # Monday 09:00 in Oslo
    scheduler = TipScheduler.from_settings(
        settings, store, conversation, [SlackDeliverer(web_client(settings.slack))], clock=lambda: now
    )
    try:
        slack_api.fail_next("chat.postMessage", error="is_archived")  # the first channel
        outcomes = await scheduler.run_once()
        now = oslo(15, 9, 30)
        assert await scheduler.run_once() == []
        posts = {p.target_id: p for p in await store.tip_posts()}
    finally:
        await store.close()

    assert [(o.target.id, o.status) for o in outcomes] == [
        ("C0ARCHIVED", TipStatus.FAILED),  # refused for good: recorded, not retried
        ("C0TIPS", TipStatus.POSTED),  # and the other channel still got its tip
    ]
    assert "is_archived" in (posts["C0ARCHIVED"].error or "")
    archived, tips = slack_api.calls_to("chat.postMessage")  # nothing more at 09:30
    assert (archived.params["channel"], tips.params["channel"]) == ("C0ARCHIVED", "C0TIPS")
    assert conversation.tip("nb", posts["C0TIPS"].tip_id).text in tips.text  # in the channel's language


async def test_tips_preview_and_post_now_from_the_command_line(
    slack_api: FakeSlackApi, tiny_kb_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(slack_api, tmp_path, tiny_kb_dir)
    parser = cli.build_parser()

    assert await cli.cmd_db_upgrade(parser.parse_args(["db", "upgrade"]), settings) == 0
    assert "the database schema is up to date" in capsys.readouterr().out

    assert await cli.cmd_tips_preview(parser.parse_args(["tips", "preview", "--days", "7"]), settings) == 0
    preview = capsys.readouterr().out.splitlines()
    assert any("slack:C0TIPS [nb]" in line and "planned" in line for line in preview)
    assert any("slack:C0ARCHIVED [en]" in line for line in preview)

    args = parser.parse_args(["tips", "post", "--now", "--target", "C0TIPS"])
    assert await cli.cmd_tips_post(args, settings) == 0
    assert "slack:C0TIPS [nb]" in capsys.readouterr().out
    [call] = slack_api.calls_to("chat.postMessage")
    assert call.params["channel"] == "C0TIPS"

    store = await Store.open(settings.database_url)
    try:
        [post] = await store.tip_posts()
    finally:
        await store.close()
    assert (post.target_id, post.status) == ("C0TIPS", TipStatus.POSTED)
