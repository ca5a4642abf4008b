"""A local stand-in for the Bot Framework Connector service that Teams bots post their replies to.

The bot's outgoing calls go to the activity's `serviceUrl`; tests point that at this server (on 127.0.0.1)
and read back what the bot sent. It answers the three calls policybot makes:

    POST /v3/conversations/{id}/activities               a new message in the conversation
    POST /v3/conversations/{id}/activities/{activityId}  a reply to (threaded under) an activity
    PUT  /v3/conversations/{id}/activities/{activityId}  an update of a message the bot sent earlier

Use it as an async context manager, or through the `bot_connector` fixture (import it into a test module
or a conftest):

    async with FakeBotConnector() as connector:
        ...  # activities with "serviceUrl": connector.url
        assert connector.calls[0].card["body"][0]["text"] == "..."

`fail(conversation_id, status)` makes every call for that conversation answer `status`, to exercise
error handling (e.g. 403 when the bot was removed, 429 when throttled).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web


@dataclass(frozen=True)
class ConnectorCall:
    """One request the bot made to the connector."""

    method: str  # "POST" or "PUT"
    conversation_id: str
    activity_id: str | None  # the activity replied to (POST) or updated (PUT); None for a new message
    activity: dict[str, Any]  # the JSON body the bot sent
    authorization: str | None  # the Authorization header, if any
    response_id: str | None = None  # the id the fake gave the posted activity (a thread root in a channel)

    @property
    def text(self) -> str | None:
        return self.activity.get("text")

    @property
    def card(self) -> dict[str, Any] | None:
        """The first Adaptive Card attached, or None."""
        for attachment in self.activity.get("attachments") or ():
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                return attachment.get("content")
        return None

    def card_texts(self) -> list[str]:
        """Every TextBlock text of the card, in order (nested containers included)."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") == "TextBlock":
                    found.append(node.get("text", ""))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.card or {})
        return found

    def card_actions(self) -> list[dict[str, Any]]:
        """Every action of the card (card-level and inside ActionSets), in order."""
        found: list[dict[str, Any]] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if str(node.get("type", "")).startswith("Action."):
                    found.append(node)
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.card or {})
        return found


class FakeBotConnector:
    """A real aiohttp server on 127.0.0.1 playing the Bot Connector REST API; records every call."""

    def __init__(self) -> None:
        self.calls: list[ConnectorCall] = []
        self._failures: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def fail(self, conversation_id: str, status: int) -> None:
        """Answer every later call for `conversation_id` with HTTP `status` (and record nothing)."""
        self._failures[conversation_id] = status

    def calls_to(self, conversation_id: str) -> list[ConnectorCall]:
        return [call for call in self.calls if call.conversation_id == conversation_id]

    async def _handle(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversation_id"]
        activity_id = request.match_info.get("activity_id")
        status = self._failures.get(conversation_id)
        if status is not None:
            return web.json_response(
                {"error": {"code": "Failure", "message": f"fake connector answers {status}"}}, status=status
            )
        body = await request.json()
        response_id = activity_id if request.method == "PUT" else f"fake-activity-{next(self._ids)}"
        self.calls.append(
            ConnectorCall(
                method=request.method,
                conversation_id=conversation_id,
                activity_id=activity_id,
                activity=body,
                authorization=request.headers.get("Authorization"),
                response_id=response_id,
            )
        )
        return web.json_response({"id": response_id})

    async def start(self) -> FakeBotConnector:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation_id}/activities", self._handle)
        app.router.add_post("/v3/conversations/{conversation_id}/activities/{activity_id}", self._handle)
        app.router.add_put("/v3/conversations/{conversation_id}/activities/{activity_id}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # aiohttp has no public accessor
        self.url = f"http://127.0.0.1:{port}/"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotConnector:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@pytest.fixture
async def bot_connector(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBotConnector]:
    """A running fake connector; the bot's requests (via `requests`) bypass any proxy for loopback."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    async with FakeBotConnector() as connector:
        yield connector
