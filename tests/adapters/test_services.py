"""The composition root builds what the settings ask for, once, and wires every part to one router."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from adapters.services import Services
from bot.config import Settings
from bot.conversation import Message
from bot.index_cache import load_indexed
from bot.knowledge_loader import load_knowledge
from tests.adapters.slack_harness import SECRET
from tests.conftest import ENTRIES, write_kb
from tests.fakes.slack_api import BOT_TOKEN

QUESTION = "Can I add my manager on Facebook?"


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


async def test_a_restart_of_an_unchanged_knowledge_base_serves_the_snapshot_the_first_start_kept(
    tmp_path: Path, tiny_kb_dir: Path
) -> None:
    cache = tmp_path / "cache"
    settings = settings_with(tmp_path, tiny_kb_dir, POLICYBOT_CACHE_DIR=str(cache))
    first = await Services.open(settings)
    await first.close()
    [snapshot] = cache.glob("index-*.pickle")
    # What the snapshot holds is what a restart serves: swap in another knowledge base's to see it.
    other = write_kb(tmp_path / "other", ENTRIES.replace("Yes, you may", "Served from the snapshot"))
    snapshot.write_bytes(pickle.dumps(load_indexed(other, None)))

    restarted = await Services.open(settings)
    try:
        reply = await restarted.conversation.handle(Message(text=QUESTION, lang_hint="en"))
        assert reply.text.startswith("Served from the snapshot")
        # A live reload reads the folder itself, never the snapshot.
        restarted.conversation.reload(await load_knowledge(tiny_kb_dir))
        reply = await restarted.conversation.handle(Message(text=QUESTION, lang_hint="en"))
        assert reply.text.startswith("Yes, you may")
    finally:
        await restarted.close()


async def test_a_cache_folder_that_cannot_be_written_is_skipped_quietly(
    tmp_path: Path, tiny_kb_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "read-only").write_text("a file where the cache folder would be (as on a read-only disk)")
    settings = settings_with(tmp_path, tiny_kb_dir, POLICYBOT_CACHE_DIR=str(tmp_path / "read-only" / "cache"))
    with caplog.at_level(logging.INFO):
        services = await Services.open(settings)
    try:
        reply = await services.conversation.handle(Message(text=QUESTION, lang_hint="en"))
        assert reply.text.startswith("Yes, you may")
        assert [r.getMessage() for r in caplog.records if "cache" in r.getMessage()] == []
    finally:
        await services.close()


def test_serve_keeps_its_snapshot_in_the_user_s_cache_folder_unless_told_otherwise(tmp_path: Path) -> None:
    assert Settings.from_env({"XDG_CACHE_HOME": str(tmp_path)}).cache_dir == tmp_path / "policybot"
    assert Settings.from_env({"POLICYBOT_CACHE_DIR": "/var/cache/pb"}).cache_dir == Path("/var/cache/pb")
    assert Settings.from_env({"POLICYBOT_CACHE_DIR": "off"}).cache_dir is None
