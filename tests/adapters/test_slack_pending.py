"""No acknowledged Slack question is lost: the process dies after the ack, Slack retries, a restart sweeps.

`policybot serve` runs in a subprocess against the fake Slack Web API and is killed with SIGKILL right
after acknowledging a burst of mentions, whose answers hang at Slack (the fake's `stall_next`); the
retries are sent to the in-process server of tests/adapters/slack_harness.py. Leases are a second or
less (settings), so nothing waits long.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import select

from adapters.slack import MENTION_CLAIM_TTL, mention_key
from bot.claims import Claims, Hold
from bot.database import pending_answers
from bot.store import Store
from tests.adapters.slack_harness import SECRET, Policybot, StartBot, cli_env, free_port, payload
from tests.conftest import wait_until_serving
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
            await wait_until_serving(http, port, process=process)
            yield process, Policybot(url, slack_api, None, http)  # type: ignore[arg-type]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_server_killed_after_acknowledging_a_burst_leaves_each_question_answered_once_or_known_sent(
    tmp_path: Path, slack_api: FakeSlackApi
) -> None:
    """SIGKILL right after Slack got its acks: each question the server had not started to answer is
    answered by its restart, once; one whose answer was on its way (Slack has it, here hanging) is
    never posted a second time."""
    burst = 30
    slack_api.stall_next("chat.postMessage", times=burst)
    mentions = [payload("app_mention") | {"event_id": f"Ev0KILL{n:03d}"} for n in range(burst)]
    async with serve(tmp_path, slack_api) as (process, bot):
        acks = await asyncio.gather(*(bot.event(m, ts=f"1700000300.{n:06d}") for n, m in enumerate(mentions)))
        process.send_signal(signal.SIGKILL)
        await process.wait()
    slack_api.release()  # Slack takes posts again
    assert acks == [200] * burst
    assert slack_api.count("chat.postMessage") == 0
    left = await pending_rows(tmp_path)
    assert len(left) == burst  # every acknowledged question is in the database: to answer, or sent
    to_answer = sorted(ts for ts, state in left if state == "answering")
    on_its_way = {ts for ts, state in left if state == "posting"}

    async with serve(tmp_path, slack_api):
        if to_answer:
            await slack_api.wait_for("chat.postMessage", n=len(to_answer), timeout=15)
        await slack_api.settle(1.0)  # longer than a lease and a few sweeps: nothing more comes
    answered = sorted(call.params["thread_ts"] for call in slack_api.calls_to("chat.postMessage"))
    assert answered == to_answer  # each once, in the mention's thread
    assert not on_its_way & set(answered)
    assert await pending_rows(tmp_path) == []


async def pending_rows(tmp_path: Path) -> list[tuple[str, str]]:
    """The answers in progress in the server's database: (the mention's thread, state)."""
    store = await Store.open(f"sqlite:///{tmp_path}/cli.db")
    try:
        rows = await store.database.run(lambda conn: conn.execute(select(pending_answers)).mappings().all())
    finally:
        await store.close()
    return [(str(row["reference"]["thread"]), str(row["state"])) for row in rows]


async def test_a_retry_is_dropped_while_the_answer_is_in_progress_and_answered_once_its_lease_expired(
    start_bot: StartBot, slack_api: FakeSlackApi
) -> None:
    lease = {"POLICYBOT_ANSWER_LEASE_SECONDS": "0.3", "POLICYBOT_PENDING_SWEEP_SECONDS": "0.1"}
    bot = await start_bot(env=lease)  # no sweeper runs here: the server alone
    mention = payload("app_mention")
    event = mention["event"]
    # Another process took the event: claimed it with what answering it needs, acknowledged it, died.
    dead = Claims(bot.store, lease=timedelta(seconds=0.3))
    hold = Hold(
        "slack", {"channel": event["channel"], "thread": event["ts"]}, "Can I add my manager on Facebook?"
    )
    ahead = [(mention_key(event), MENTION_CLAIM_TTL)]
    assert await dead.claim(mention["event_id"], ahead=ahead, hold=hold)

    assert await bot.event(mention, retry=1) == 200  # Slack's first retry: the lease is live
    await slack_api.settle(0.1)
    assert slack_api.count("chat.postMessage") == 0

    await asyncio.sleep(0.3)  # the process answering it is taken for dead
    assert await bot.event(mention, retry=2) == 200
    [answer] = await slack_api.wait_for("chat.postMessage")
    assert "Yes, you may" in answer.text
    assert answer.params["thread_ts"] == event["ts"]

    await asyncio.sleep(0.3)
    assert await bot.event(mention, retry=3) == 200  # answered: no retry is answered again
    await slack_api.settle(0.3)
    assert slack_api.count("chat.postMessage") == 1
    assert await bot.store.pending_count() == 0
