"""The Slack end-to-end harness: the real server on 127.0.0.1 and signed requests to it.

`start_bot` (a fixture, registered in tests/conftest.py) starts policybot with a small knowledge base
against the fake Slack Web API (tests/fakes/slack_api.py); `Policybot` sends what Slack would send.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from adapters.server import build_app
from adapters.services import Services
from bot.config import Settings
from bot.conversation import Conversation
from bot.knowledge_loader import load_knowledge
from bot.store import Store
from tests.conftest import write_kb
from tests.fakes.slack_api import BOT_TOKEN, Call, FakeSlackApi

PAYLOADS = Path(__file__).parent / "payloads" / "slack"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ASKER = "U0ASKER01"
HR_CHANNEL = "C0HRDESK"
SLOW = 3.5  # seconds a slow Slack takes to accept the answer: more than the 3 s Slack waits for the ack
REPO = Path(__file__).resolve().parents[2]


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


def signed(body: str | bytes, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature: HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body if isinstance(body, bytes) else body.encode()
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Policybot:
    """The running server and what a test needs to talk to it the way Slack does."""

    url: str
    fake: FakeSlackApi
    store: Store
    http: aiohttp.ClientSession

    async def post(self, body: str | bytes, content_type: str, headers: dict[str, str]) -> tuple[int, str]:
        data = body if isinstance(body, bytes) else body.encode()
        async with self.http.post(
            self.url + "/slack/events", data=data, headers={"Content-Type": content_type, **headers}
        ) as response:
            return response.status, await response.text()

    async def event(self, event: dict[str, Any], *, retry: int | None = None, **overrides: Any) -> int:
        """Deliver an Events API callback: a sample payload with `overrides` applied to its `event`."""
        body = copy.deepcopy(event)
        body["event"].update(overrides)
        text = json.dumps(body)
        headers = signed(text)
        if retry is not None:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        status, _ = await self.post(text, "application/json", headers)
        return status

    async def dm(self, text: str, **overrides: Any) -> int:
        return await self.event(payload("message_im"), text=text, **overrides)

    async def command(self, text: str, response_url: str) -> tuple[int, str, float]:
        form = payload("slash_command") | {"text": text, "response_url": response_url}
        body = urlencode(form)
        started = time.perf_counter()
        status, answer = await self.post(body, "application/x-www-form-urlencoded", signed(body))
        return status, answer, time.perf_counter() - started

    async def click(
        self,
        message: Call,
        action_id: str,
        *,
        user: str = ASKER,
        ephemeral: bool = False,
        name: str = "click",
    ) -> int:
        """Press a button of a message the bot sent (taken from what the fake recorded)."""
        button = next(b for b in message.buttons if b["action_id"] == action_id)
        block_id = next(
            block.get("block_id", "")
            for block in message.blocks
            if button in block.get("elements", [])
        )  # fmt: skip
        body = payload("block_actions")
        channel = str(message.params.get("channel") or body["channel"]["id"])
        ts = "1700000500.000500"
        body["user"]["id"] = user
        body["channel"]["id"] = channel
        body["container"].update(channel_id=channel, message_ts=ts, is_ephemeral=ephemeral)
        if ephemeral:
            del body["message"]  # Slack does not send an ephemeral message back
        else:
            body["message"].update(ts=ts, text=message.params.get("text"), blocks=message.blocks)
            if message.params.get("thread_ts"):
                body["message"]["thread_ts"] = message.params["thread_ts"]
        body["response_url"] = self.fake.response_url(name)
        body["actions"][0].update(
            action_id=action_id, block_id=block_id, value=button["value"], text=button["text"]
        )
        form = urlencode({"payload": json.dumps(body)})
        status, _ = await self.post(form, "application/x-www-form-urlencoded", signed(form))
        return status


StartBot = Callable[..., Awaitable[Policybot]]


@pytest.fixture
async def start_bot(tmp_path: Path, slack_api: FakeSlackApi) -> AsyncIterator[StartBot]:
    """Start the real server (build_app + AppRunner on 127.0.0.1:0) with a small knowledge base."""
    runners: list[tuple[web.AppRunner, Store, aiohttp.ClientSession]] = []

    async def start(
        *, hr_channel: str | None = HR_CHANNEL, messages: str | None = None, env: dict[str, str] | None = None
    ) -> Policybot:
        """`env`: more settings (e.g. a short POLICYBOT_ANSWER_LEASE_SECONDS)."""
        kb_dir = write_kb(tmp_path / f"knowledge{len(runners)}", messages=messages)
        settings_env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack_api.api_url,
            "DATABASE_URL": f"sqlite:///{tmp_path}/policybot{len(runners)}.db",
            "POLICYBOT_KNOWLEDGE": str(kb_dir),
        }
        if hr_channel:
            settings_env["POLICYBOT_HR_CHANNEL"] = hr_channel
        settings = Settings.from_env(settings_env | (env or {}))
        store = await Store.open(settings.database_url, secret=settings.claim_secret)
        conversation = Conversation(await load_knowledge(kb_dir), recorder=store)
        runner = web.AppRunner(build_app(Services.assemble(settings, conversation, store)), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        http = aiohttp.ClientSession()
        runners.append((runner, store, http))
        return Policybot(f"http://127.0.0.1:{port}", slack_api, store, http)

    yield start
    for runner, store, http in runners:
        await http.close()
        await runner.cleanup()
        await store.close()


def action_ids(call: Call) -> list[str]:
    return [button["action_id"] for button in call.buttons]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "POLICYBOT_", "Microsoft"))}
    return (
        keep
        | {
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
            "POLICYBOT_KNOWLEDGE": str(write_kb(tmp_path / "cli-knowledge")),
        }
        | extra
    )
