"""The composition root builds what the settings ask for, once, and wires every part to one router."""

from __future__ import annotations

from pathlib import Path

from adapters.services import Services
from bot.config import Settings
from tests.adapters.slack_harness import SECRET
from tests.fakes.slack_api import BOT_TOKEN


def settings_with(tmp_path: Path, kb_dir: Path, **env: str) -> Settings:
    return Settings.from_env(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'services.db'}", "POLICYBOT_KNOWLEDGE": str(kb_dir), **env}
    )


async def test_each_configured_platform_is_built_once_around_one_router(
    tmp_path: Path, tiny_kb_dir: Path
) -> None:
    settings = settings_with(
        tmp_path,
        tiny_kb_dir,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        POLICYBOT_ENV="development",  # Teams, anonymously
    )
    services = await Services.open(settings)
    try:
        assert services.platforms == ["slack", "teams"]
        assert services.slack is not None and services.teams is not None
        assert services.slack.router is services.router is services.teams.router
        assert sorted(services.tips.deliverers) == ["slack", "teams"]
        assert services.router.admin.tips is services.tips
        assert services.reloader is not None and services.reloader.directory == tiny_kb_dir
        assert services.conversation.recorder is services.store  # questions are recorded for HR
    finally:
        await services.close()


async def test_without_platform_settings_there_is_no_platform_and_no_tip_deliverer(
    tmp_path: Path, tiny_kb_dir: Path
) -> None:
    services = await Services.open(settings_with(tmp_path, tiny_kb_dir))
    try:
        assert (services.platforms, services.deliverers, services.slack, services.teams) == (
            [],
            (),
            None,
            None,
        )
        assert services.tips.deliverers == {}
    finally:
        await services.close()
