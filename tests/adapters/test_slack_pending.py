"""No acknowledged Slack question is lost: the process dies after the ack, Slack retries, a restart sweeps.

`policybot serve` runs in a subprocess against the fake Slack Web API and is killed with SIGKILL while
its answer hangs at Slack (the fake's `stall_next`: Slack never took it); the retries are sent to the
in-process server of tests/adapters/slack_harness.py. Leases are a second or less (settings), so
nothing waits long.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.adapters.slack_harness import SECRET, Policybot, StartBot, cli_env, free_port, payload
from tests.fakes.slack_api import BOT_TOKEN, FakeSlackApi

SHORT_LEASE = {"POLICYBOT_ANSWER_LEASE_SECONDS": "0.6", "POLICYBOT_PENDING_SWEEP_SECONDS": "0.2"}


@contextlib.asynccontextmanager
async def serve(
    tmp_path: Path, slack_api: FakeSlackApi
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Policybot]]:
    """`policybot serve` with short leases, on tmp_path's database; killed (SIGKILL) if still running."""
    port = free_port()
    env = cli_env(
        tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack_api.api_url,
        **SHORT_LEASE,
    )  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = asyncio.get_running_loop().time() + 30  # a start on a loaded 2-core machine is slow
            while True:
                try:
                    async with http.get(url + "/healthz"):
                        break
                except aiohttp.ClientConnectionError:
                    if process.returncode is not None or asyncio.get_running_loop().time() > deadline:
                        pytest.fail("policybot serve did not start")
                    await asyncio.sleep(0.05)
            yield process, Policybot(url, slack_api, None, http)  # type: ignore[arg-type]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_questions_acknowledged_by_a_server_killed_before_answering_are_answered_once_by_its_restart(
    tmp_path: Path, slack_api: FakeSlackApi
) -> None:
    slack_api.stall_next("chat.postMessage", times=2)
    async with serve(tmp_path, slack_api) as (process, bot):
        assert await bot.event(payload("app_mention")) == 200  # acknowledged
        assert await bot.dm("Kan jeg legge ut bilder fra jobben?") == 200
        await slack_api.wait_stalled(2)  # both answers are on their way, and Slack has not taken them
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert slack_api.count("chat.postMessage") == 0

    async with serve(tmp_path, slack_api):
        answers = await slack_api.wait_for("chat.postMessage", n=2, timeout=10)
        await slack_api.settle(0.8)  # longer than a lease and a few sweeps: nothing more comes
    assert slack_api.count("chat.postMessage") == 2
    by_channel = {call.params["channel"]: call for call in answers}
    mention = payload("app_mention")["event"]
    assert by_channel[mention["channel"]].params["thread_ts"] == mention["ts"]  # in the mention's thread
    assert "Yes, you may" in by_channel[mention["channel"]].text
    assert "Sjekk at ingen kunder" in by_channel[payload("message_im")["event"]["channel"]].text


async def test_a_retry_is_dropped_while_the_answer_is_in_progress_and_answered_once_its_lease_expired(
    start_bot: StartBot, slack_api: FakeSlackApi
) -> None:
    lease = {"POLICYBOT_ANSWER_LEASE_SECONDS": "0.3", "POLICYBOT_PENDING_SWEEP_SECONDS": "0.1"}
    bot = await start_bot(env=lease)  # no sweeper runs here: the server alone
    slack_api.stall_next("chat.postMessage")
    mention = payload("app_mention")
    assert await bot.event(mention) == 200
    await slack_api.wait_stalled()
    assert await bot.event(mention, retry=1) == 200  # Slack's first retry: the lease is live
    await asyncio.sleep(0.1)
    assert slack_api.count("chat.postMessage") == 0

    await asyncio.sleep(0.3)  # the process answering it is taken for dead
    assert await bot.event(mention, retry=2) == 200
    [answer] = await slack_api.wait_for("chat.postMessage")
    assert "Yes, you may" in answer.text
    assert answer.params["thread_ts"] == mention["event"]["ts"]

    slack_api.release()  # the first answer never got through
    await slack_api.settle(0.3)
    assert await bot.event(mention, retry=3) == 200  # answered: no retry is answered again
    await slack_api.settle(0.3)
    assert slack_api.count("chat.postMessage") == 1
    assert await bot.store.pending_count() == 0
