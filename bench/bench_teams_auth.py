"""Teams with authentication on: what checking every token and sending with the bot's own token cost.

Runs policybot's server in this process (shipped knowledge base, SQLite store) with the fake identity
service and the fake Bot Connector from tests/fakes, and sends N personal-chat questions one after
another, each with a freshly signed Bot Framework token. Reports how many requests the bot made to the
token endpoint for its own token (the issue's figure: one per token lifetime, not one per reply), and
the CPU time per answered question (this whole process, all threads, fakes included), beside the
baseline measured in the same run: the same questions to the same server in anonymous development
mode (no token checked, none fetched).

    python bench/bench_teams_auth.py [--replies 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.server import build_app  # noqa: E402 (after the path)
from adapters.services import Services  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.conversation import Conversation  # noqa: E402
from bot.knowledge_loader import load_knowledge, resolve_knowledge_dir  # noqa: E402
from bot.store import Store  # noqa: E402
from tests.fakes.bot_connector import FakeBotConnector  # noqa: E402
from tests.fakes.identity import FakeIdentity  # noqa: E402

APP_ID = "00000000-0000-4000-8000-000000000123"
PAYLOAD = REPO / "tests" / "adapters" / "payloads" / "teams" / "personal_message.json"
QUESTIONS = ["Can I add my manager on Facebook?", "Kan jeg legge ut bilder fra jobben?"]


async def run(env: dict[str, str], directory: Path, replies: int, identity: FakeIdentity | None) -> float:
    """CPU seconds per answered question for `replies` questions, one at a time."""
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{directory / 'policybot.db'}", **env})
    store = await Store.open(settings.database_url)
    kb = await load_knowledge(resolve_knowledge_dir(None))  # the shipped guidelines
    conversation = Conversation(kb, default_lang="en", recorder=store)
    runner = web.AppRunner(build_app(Services.assemble(settings, conversation, store)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # no public accessor
    template: dict[str, Any] = json.loads(PAYLOAD.read_text(encoding="utf-8"))
    try:
        async with FakeBotConnector() as connector, aiohttp.ClientSession() as http:
            started = time.process_time()
            for n in range(replies):
                body = {**template, "id": f"bench-{n}", "text": QUESTIONS[n % len(QUESTIONS)]}
                body["serviceUrl"] = connector.url
                headers = {"Content-Type": "application/json"}
                if identity is not None:
                    headers["Authorization"] = f"Bearer {identity.token(APP_ID, connector.url)}"
                url = f"http://127.0.0.1:{port}/api/messages"
                async with http.post(url, data=json.dumps(body), headers=headers) as response:
                    assert response.status == 200, await response.text()
            cpu = time.process_time() - started
            assert len(connector.calls) == replies, "every question answered"
    finally:
        await runner.cleanup()
        await store.close()
    return cpu / replies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=100)
    args = parser.parse_args()
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        identity = FakeIdentity(directory)
        os.environ["REQUESTS_CA_BUNDLE"] = str(identity.cert_file)
        await identity.start()
        try:
            (directory / "anonymous").mkdir()
            (directory / "authenticated").mkdir()
            anonymous = await run(
                {"POLICYBOT_ENV": "development"}, directory / "anonymous", args.replies, None
            )
            env = {"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": identity.app_password, **identity.env()}
            authenticated = await run(env, directory / "authenticated", args.replies, identity)
        finally:
            await identity.close()
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores, shared)")
    print(f"{args.replies} authenticated replies made {len(identity.token_requests)} token request(s)")
    print(f"CPU per reply, authenticated:           {authenticated * 1000:6.1f} ms")
    print(f"CPU per reply, anonymous (baseline):    {anonymous * 1000:6.1f} ms")
    print(f"ratio authenticated / anonymous:        {authenticated / anonymous:6.2f}")


if __name__ == "__main__":
    asyncio.run(main())
