"""The Teams end-to-end harness: the real server on 127.0.0.1 and Bot Framework activities to it.

`start_policybot` runs policybot against the fake Bot Connector service (tests/fakes/bot_connector.py,
whose `bot_connector` fixture is registered in tests/conftest.py); `activity` reads a hand-written
sample from payloads/teams.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from adapters.server import build_app
from adapters.services import Services
from bot.config import Settings
from bot.conversation import Conversation
from bot.knowledge_loader import load_knowledge
from bot.store import Store
from tests.fakes.bot_connector import FakeBotConnector

PAYLOADS = Path(__file__).parent / "payloads" / "teams"
HR_CONVERSATION = "19:hr-questions@thread.tacv2"
PERSONAL = "a:1-personal-kari"
CHANNEL = "19:general@thread.tacv2"
APP_ID = "00000000-0000-4000-8000-000000000123"


def activity(name: str, connector: FakeBotConnector, **changes: Any) -> dict[str, Any]:
    """A hand-written Teams activity from payloads/teams, pointed at the fake connector."""
    body = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    body["serviceUrl"] = connector.url
    body.update(copy.deepcopy(changes))
    return body


@dataclass
class Policybot:
    """The running server, its store and the fake Bot Connector it talks to."""

    url: str
    app: web.Application
    store: Store
    conversation: Conversation
    connector: FakeBotConnector
    http: aiohttp.ClientSession
    services: Services

    async def post(self, body: Any, *, headers: dict[str, str] | None = None) -> tuple[int, str]:
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        sent = {"Content-Type": "application/json", **(headers or {})}
        async with self.http.post(f"{self.url}/api/messages", data=data, headers=sent) as response:
            return response.status, await response.text()


@asynccontextmanager
async def start_policybot(
    env: dict[str, str], kb_dir: Path, tmp_path: Path, connector: FakeBotConnector
) -> AsyncIterator[Policybot]:
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'policybot.db'}", **env})
    store = await Store.open(settings.database_url)
    conversation = Conversation(await load_knowledge(kb_dir), default_lang="en", recorder=store)
    services = Services.assemble(settings, conversation, store)
    app = build_app(services)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # no public accessor
    try:
        async with aiohttp.ClientSession() as http:
            yield Policybot(f"http://127.0.0.1:{port}", app, store, conversation, connector, http, services)
    finally:
        await runner.cleanup()
        await store.close()
