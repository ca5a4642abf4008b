"""Slack throughput and latency: signed `app_mention` events to `policybot serve` over loopback.

Runs `policybot serve` (the real CLI, shipped knowledge base, SQLite store) in a subprocess with the
fake Slack Web API from tests/fakes in this process, and a bare aiohttp server that answers 200 in
another subprocess as the baseline. Reports events answered per second (request sent -> answer recorded
by the fake) and p50/p99 latency at 50 concurrent requests, beside the bare handler's request rate.

    python bench/bench_slack.py [--events 1000] [--concurrency 50]

Targets: at least 40% of the bare handler's rate; p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.slack_api import BOT_TOKEN, BOT_USER_ID, FakeSlackApi  # noqa: E402 (after the path)

SECRET = "bench-signing-secret"
QUESTIONS = [
    "Can I add my manager on Facebook?",
    "Kan jeg legge ut bilder fra jobben?",
    "May I post photos from the office party?",
    "Hvor finner jeg retningslinjene for sosiale medier?",
    "Can I write about my job on LinkedIn?",
]
BARE_SERVER = """
import sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.Response(text="")
app = web.Application()
app.router.add_post("/slack/events", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""
TIME_LIMIT = 120.0  # seconds for the whole run, whatever the arguments


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def mention(number: int, run: str) -> tuple[str, str]:
    """A signed app_mention body; its `ts` identifies the answer (the bot replies in its thread)."""
    ts = f"1700{number:06d}.{run}"
    body = json.dumps({
        "type": "event_callback", "team_id": "T0POLICY", "api_app_id": "A0POLICY",
        "event_id": f"Ev{run}{number:07d}", "event_time": 1700000000 + number,
        "event": {
            "type": "app_mention", "user": "U0ASKER01", "channel": "C0GENERAL", "ts": ts, "event_ts": ts,
            "text": f"<@{BOT_USER_ID}> {QUESTIONS[number % len(QUESTIONS)]}",
        },
    })  # fmt: skip
    return ts, body


def headers(body: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
    }


async def wait_until_up(http: aiohttp.ClientSession, url: str) -> None:
    for _ in range(200):
        try:
            async with http.post(url, data=b"{}") as response:
                await response.read()
                return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.05)
    raise SystemExit(f"server at {url} did not start")


async def blast(http: aiohttp.ClientSession, url: str, bodies: list[str], concurrency: int) -> list[float]:
    """Send every body with `concurrency` in flight; return each request's start time."""
    started = [0.0] * len(bodies)
    queue = iter(range(len(bodies)))

    async def worker() -> None:
        for i in queue:
            started[i] = time.perf_counter()
            async with http.post(url, data=bodies[i].encode(), headers=headers(bodies[i])) as response:
                await response.read()
                if response.status != 200:
                    raise SystemExit(f"request {i} got HTTP {response.status}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return started


async def bench_bare(http: aiohttp.ClientSession, events: int, concurrency: int) -> float:
    port = free_port()
    server = await asyncio.create_subprocess_exec(sys.executable, "-c", BARE_SERVER, str(port))
    try:
        url = f"http://127.0.0.1:{port}/slack/events"
        await wait_until_up(http, url)
        bodies = [mention(n, "000001")[1] for n in range(events)]
        await blast(http, url, bodies[: min(200, events)], concurrency)  # warm-up
        start = time.perf_counter()
        await blast(http, url, bodies, concurrency)
        return events / (time.perf_counter() - start)
    finally:
        server.terminate()
        await server.wait()


async def bench_policybot(
    http: aiohttp.ClientSession, fake: FakeSlackApi, events: int, concurrency: int, workdir: Path
) -> tuple[float, list[float]]:
    port = free_port()
    env = os.environ | {
        "PYTHONPATH": str(REPO),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "DATABASE_URL": f"sqlite:///{workdir}/bench.db",
        "POLICYBOT_KNOWLEDGE": str(REPO / "knowledge"),
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), env=env,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/slack/events"
        await wait_until_up(http, url)
        warm = [mention(n, "000002")[1] for n in range(min(200, events))]
        await blast(http, url, warm, concurrency)
        await fake.wait_for("chat.postMessage", n=len(warm), timeout=30)
        fake.calls.clear()

        pairs = [mention(n, "000003") for n in range(events)]
        start = time.perf_counter()
        started = await blast(http, url, [body for _, body in pairs], concurrency)
        answers = await fake.wait_for("chat.postMessage", n=events, timeout=60)
        answered_at = {call.params["thread_ts"]: call.at for call in answers}
        latencies = [answered_at[ts] - started[i] for i, (ts, _) in enumerate(pairs)]
        rate = events / (max(answered_at.values()) - start)
        return rate, latencies
    finally:
        server.terminate()
        await server.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    events = max(1, min(args.events, 5000))

    fake = await FakeSlackApi().start()
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    try:
        async with aiohttp.ClientSession(connector=connector) as http, asyncio.timeout(TIME_LIMIT):
            bare = await bench_bare(http, events, args.concurrency)
            with tempfile.TemporaryDirectory() as workdir:
                rate, latencies = await bench_policybot(http, fake, events, args.concurrency, Path(workdir))
    finally:
        await fake.close()

    ms = sorted(latency * 1000 for latency in latencies)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    share = rate / bare
    print(f"{events} signed app_mention events, {args.concurrency} concurrent, over loopback")
    print(f"bare aiohttp handler (200, no work): {bare:8.0f} requests/s")
    print(f"policybot serve (answer recorded):   {rate:8.0f} events answered/s = {share:.0%} of bare")
    print(f"latency request -> chat.postMessage: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms")
    print(f"targets: >= 40% of bare rate: {'met' if share >= 0.4 else 'NOT met'}; "
          f"p99 < 100 ms: {'met' if p99 < 100 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
