"""Teams with authentication on: policybot started in production mode with an app id and password,
pointed at the fake identity service (tests/fakes/identity.py) by its settings alone. `launch` is a
fixture for every test (registered in tests/conftest.py); `auth` signs a request as the Bot Connector."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from tests.adapters.teams_harness import Policybot, start_policybot
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.identity import FakeIdentity

APP_ID = "00000000-0000-4000-8000-000000000123"
PASSWORD = "the-app-password"

Launch = Callable[..., AbstractAsyncContextManager[Policybot]]


def app_env(fake: FakeIdentity, **more: str) -> dict[str, str]:
    return {"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": PASSWORD, **fake.env(), **more}


@pytest.fixture
def launch(
    tiny_kb_dir: Path, tmp_path: Path, identity: FakeIdentity, bot_connector: FakeBotConnector
) -> Launch:
    """Starts policybot in production mode with an app id and password, pointed at the fake identity
    service, with `env` added (a variable given as None is left out)."""

    def start(**env: str | None) -> AbstractAsyncContextManager[Policybot]:
        merged = {key: value for key, value in {**app_env(identity), **env}.items() if value is not None}
        return start_policybot(merged, tiny_kb_dir, tmp_path, bot_connector)

    return start


def auth(bot: Policybot, fake: FakeIdentity) -> dict[str, str]:
    """The Authorization header the Bot Connector sends with an activity for this bot."""
    return {"Authorization": f"Bearer {fake.token(APP_ID, bot.connector.url)}"}
