"""A local stand-in for the Slack Web API and `response_url`s, recording every call the bot makes.

It listens on 127.0.0.1 with a free port; point `SLACK_API_URL` at `fake.api_url`. Tests assert on
`fake.calls` and wait for asynchronous answers with `await fake.wait_for("chat.postMessage")`.
The `slack_api` fixture (registered for every test in tests/conftest.py) gives a started one.
Failures are scripted per method with `fake.fail_next(...)`: a Slack error (`error="channel_not_found"`),
an HTTP status with `Retry-After` (`status=429, retry_after=1`) or a dropped connection (`disconnect=True`).
A slow Slack is scripted with `fake.slow_next(method, seconds)`: the next call is handled that much later.
A Slack that never takes a call, `fake.stall_next(method)`: the next call hangs, unrecorded, until the bot
goes away (a process killed before its answer got through) or `fake.release()` refuses it (and the
calls still to stall).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

BOT_TOKEN = "xoxb-test-token"
BOT_USER_ID = "UPOLICYBOT"
BOT_ID = "BPOLICYBOT"
TEAM_ID = "T0POLICY"


@dataclass(frozen=True)
class Call:
    """One request the bot made: the Web API method (or "response_url") and its decoded parameters."""

    method: str
    params: dict[str, Any]
    token: str | None
    at: float  # time.perf_counter() when the fake handled it (after any `slow_next` delay)

    @property
    def text(self) -> str:
        """Everything a user would read: the fallback text plus every text in the blocks or view."""
        parts = [str(self.params.get("text") or "")]
        parts.extend(_texts(self.params.get("blocks") or []))
        parts.extend(_texts((self.params.get("view") or {}).get("blocks") or []))
        return "\n".join(p for p in parts if p)

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.params.get("blocks")
        if blocks is None:
            blocks = (self.params.get("view") or {}).get("blocks")
        return list(blocks or [])

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [
            element
            for block in self.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("type") == "button"
        ]


def _texts(node: Any) -> list[str]:
    """Every `text` string inside a block structure, depth first."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_texts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_texts(item))
    return found


@dataclass
class _Failure:
    error: str | None
    status: int
    retry_after: int | None
    disconnect: bool


@dataclass
class FakeSlackApi:
    """The fake Slack Web API. `users` maps user ids to the `user` object `users.info` returns."""

    token: str = BOT_TOKEN
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _failures: dict[str, deque[_Failure]] = field(default_factory=lambda: defaultdict(deque))
    _delays: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _stalls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stalled: int = 0  # calls hanging now
    latency: float = 0.0  # seconds every call takes (real Slack: a tenth of a second or more)
    _released: asyncio.Event | None = None
    _runner: web.AppRunner | None = None
    _port: int = 0
    _changed: asyncio.Condition | None = None
    _ts: int = 0

    async def start(self) -> FakeSlackApi:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response_url)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self._changed = asyncio.Condition()
        self._released = asyncio.Event()
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/"

    def response_url(self, name: str = "r1") -> str:
        """A `response_url` for a slash-command or block_actions payload; posts record as "response_url"."""
        return f"http://127.0.0.1:{self._port}/response/{name}"

    # ---- scripting and assertions ---------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
        disconnect: bool = False,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls to `method` fail; the call after that succeeds as usual."""
        for _ in range(times):
            self._failures[method].append(_Failure(error, status, retry_after, disconnect))

    def slow_next(self, method: str, seconds: float) -> None:
        """Make the next call to `method` (or "response_url") wait `seconds` before it is handled."""
        self._delays[method].append(seconds)

    def stall_next(self, method: str, times: int = 1) -> None:
        """Make the next `times` calls to `method` hang, unrecorded (Slack never took them)."""
        self._stalls[method] += times

    def release(self) -> None:
        """End the calls hanging now, refused (`not_taken`) and still unrecorded; stall no more."""
        assert self._released is not None
        self._released.set()
        self._stalls.clear()

    async def wait_stalled(self, n: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (reads best in tests)
        """Wait until `n` calls hang."""
        assert self._changed is not None
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.stalled >= n), timeout)

    async def _stall(self, request: web.Request) -> web.StreamResponse:
        assert self._changed is not None and self._released is not None
        async with self._changed:
            self.stalled += 1
            self._changed.notify_all()
        try:
            while not self._released.is_set():
                if request.transport is None or request.transport.is_closing():
                    return web.Response(status=500)  # the bot is gone; nobody reads this
                await asyncio.sleep(0.01)
            return web.json_response({"ok": False, "error": "not_taken"})
        finally:
            self.stalled -= 1

    @property
    def last_ts(self) -> str:
        """The `ts` of the newest message the fake posted (chat.postMessage answers with it)."""
        return f"{1_700_000_000 + self._ts}.000100"

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def count(self, method: str) -> int:
        return len(self.calls_to(method))

    async def wait_for(self, method: str, n: int = 1, timeout: float = 5.0) -> list[Call]:  # noqa: ASYNC109 (reads best in tests)
        """Wait until `method` was called at least `n` times; return those calls (fails on timeout)."""
        assert self._changed is not None, "start() the fake first"
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.count(method) >= n), timeout)
            except TimeoutError:
                seen = [call.method for call in self.calls]
                raise AssertionError(
                    f"expected {n} call(s) to {method} within {timeout}s; saw {seen}"
                ) from None
        return self.calls_to(method)

    async def settle(self, quiet: float = 0.2) -> None:
        """Wait until no call has arrived for `quiet` seconds (to assert that nothing more is sent)."""
        while True:
            before = len(self.calls)
            await asyncio.sleep(quiet)
            if len(self.calls) == before:
                return

    # ---- HTTP ------------------------------------------------------------------------------------

    async def _record(self, method: str, params: dict[str, Any], token: str | None) -> None:
        assert self._changed is not None
        delays = self._delays.get(method)
        if delays:
            await asyncio.sleep(delays.popleft())
        elif self.latency:
            await asyncio.sleep(self.latency)
        async with self._changed:
            self.calls.append(Call(method, params, token, time.perf_counter()))
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await _params(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        if self._stalls.get(method):
            self._stalls[method] -= 1
            return await self._stall(request)
        failures = self._failures.get(method)
        failure = failures.popleft() if failures else None
        if failure is not None and failure.disconnect:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        await self._record(method, params, token)
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            error = failure.error or ("ratelimited" if failure.status == 429 else "internal_error")
            return web.json_response({"ok": False, "error": error}, status=failure.status, headers=headers)
        if token != self.token:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response(self._answer(method, params))

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0911 — one answer per Web API method
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://policy-test.slack.com/",
                "team": "Policy Test",
                "user": "policybot",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "users.info":
            user = self.users.get(str(params.get("user")))
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": user}
        if method in ("chat.postMessage", "chat.update"):
            self._ts += 1
            ts = params.get("ts") or f"{1_700_000_000 + self._ts}.000100"
            return {
                "ok": True,
                "channel": params.get("channel"),
                "ts": ts,
                "message": {"text": params.get("text")},
            }
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{1_700_000_000 + self._ts}.000200"}
        if method == "views.publish":
            return {"ok": True, "view": {"id": "V0HOME", **(params.get("view") or {})}}
        return {"ok": True}

    async def _response_url(self, request: web.Request) -> web.Response:
        params = await request.json()
        params["url_name"] = request.match_info["name"]
        failures = self._failures.get("response_url")
        failure = failures.popleft() if failures else None
        await self._record("response_url", params, None)
        if failure is not None:
            return web.Response(status=failure.status if failure.status != 200 else 404, text="expired_url")
        return web.Response(text="ok")


async def _params(request: web.Request) -> dict[str, Any]:
    """Decode query, form or JSON parameters the way Slack does; `blocks`/`view` given as JSON strings too."""
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            params.update(await request.json())
        else:
            params.update(dict(await request.post()))
    for key in ("blocks", "view"):
        if isinstance(params.get(key), str):
            params[key] = json.loads(params[key])
    return params


@pytest.fixture
async def slack_api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeSlackApi]:
    """A running fake Slack Web API; slack_sdk would route loopback calls through an HTTPS_PROXY."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    fake = await FakeSlackApi().start()
    try:
        yield fake
    finally:
        await fake.close()
