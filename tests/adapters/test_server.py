"""The one server: what a start costs (SDKs loaded only for the platforms configured) and its access log."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.config import Settings
from bot.errors import ConfigError
from tests.adapters.slack_harness import REPO, SECRET, cli_env, free_port
from tests.conftest import wait_until_serving
from tests.fakes.slack_api import BOT_TOKEN

# Builds the server's application the way `policybot serve` does, in a fresh interpreter, and says which
# platforms were mounted and whether the Teams SDK was imported to do it.
BUILD_APP = """
import asyncio, json, sys
from adapters import server
from adapters.services import Services
from bot.config import Settings
async def main():
    services = await Services.open(Settings.from_env())
    try:
        server.build_app(services)
    finally:
        await services.close()
    print(json.dumps({"platforms": services.platforms, "botbuilder": "botbuilder" in sys.modules}))
asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("teams_env", "platforms", "loaded"),
    [
        ({}, ["slack"], False),
        ({"MicrosoftAppId": "app-id", "MicrosoftAppPassword": "secret"}, ["slack", "teams"], True),
        ({"POLICYBOT_ENV": "development"}, ["slack", "teams"], True),
    ],
    ids=["slack_only", "teams_configured", "teams_anonymous_in_development"],
)
def test_the_teams_sdk_is_loaded_only_when_teams_is_mounted(
    tmp_path: Path, teams_env: dict[str, str], platforms: list[str], loaded: bool
) -> None:
    env = cli_env(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SECRET, **teams_env)
    done = subprocess.run(
        [sys.executable, "-c", BUILD_APP], env=env, cwd=REPO,
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    found = json.loads(done.stdout)
    assert found["platforms"] == platforms
    assert found["botbuilder"] is loaded


# `policybot serve` on SQLite in a fresh interpreter: it starts, makes its first reads of the store (the
# pending answers' sweep runs at once), and stops; which of SQLAlchemy's async engine and what that
# imports (its ORM, greenlet: 6 MiB of every replica's memory) were loaded. Only PostgreSQL needs them.
SERVE_AND_LIST_MODULES = """
import asyncio, json, os, signal, sys
import aiohttp
from adapters import server
from bot.config import Settings
from tests.conftest import wait_until_serving
async def main(port):
    serving = asyncio.create_task(server.serve(Settings.from_env(), port=port))
    async with aiohttp.ClientSession() as http:
        await wait_until_serving(http, port)
    await asyncio.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
    await serving
asyncio.run(main(int(sys.argv[1])))
heavy = ("sqlalchemy.ext.asyncio", "sqlalchemy.orm", "greenlet", "aiosqlite")
print(json.dumps([m for m in heavy if m in sys.modules]))
"""


def test_a_server_on_sqlite_never_loads_sqlalchemys_async_engine(tmp_path: Path) -> None:
    env = cli_env(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SECRET)
    assert env["DATABASE_URL"].startswith("sqlite:///")
    done = subprocess.run(
        [sys.executable, "-c", SERVE_AND_LIST_MODULES, str(free_port())], env=env, cwd=REPO,
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(done.stdout) == []
    assert done.stderr == ""  # (no warning: the sweep read the store)


async def serve_and_get_healthz(tmp_path: Path, **env: str) -> str:
    """Start `policybot serve`, GET /healthz once, stop it with SIGTERM; what it logged."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), env=cli_env(tmp_path, **env),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until_serving(http, port)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return stderr.decode()


async def test_the_access_log_is_off_unless_policybot_access_log_is_on(tmp_path: Path) -> None:
    quiet = await serve_and_get_healthz(tmp_path)
    assert "serving on port" in quiet
    assert "GET /healthz" not in quiet

    logged = await serve_and_get_healthz(tmp_path, POLICYBOT_ACCESS_LOG="on")
    assert "aiohttp.access" in logged
    assert "GET /healthz" in logged


def test_an_access_log_setting_that_is_not_on_or_off_is_refused() -> None:
    with pytest.raises(ConfigError, match="POLICYBOT_ACCESS_LOG='loud' must be on or off"):
        Settings.from_env({"POLICYBOT_ACCESS_LOG": "loud"})
    assert Settings.from_env({}).access_log is False
    assert Settings.from_env({"POLICYBOT_ACCESS_LOG": "on"}).access_log is True
