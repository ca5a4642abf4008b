"""Slack throughput and latency: signed `app_mention` events to `policybot serve` over loopback.

Runs `policybot serve` (the real CLI, shipped knowledge base, SQLite store) in a subprocess with the
fake Slack Web API from tests/fakes in this process, and two baselines in other subprocesses: a bare
aiohttp server that answers 200, and the "floor", the least any answering server must do (verify the
signature, ack, make one chat.postMessage; nothing else). Reports events answered per second (request
sent -> answer recorded by the fake) and p50/p99 latency at 50 concurrent requests, beside the bare
handler's request rate and the floor's.

It also says what limits the rate: the server processes' CPU time per request/event (from /proc), and
the CPU each stage of an answer costs when measured alone in this process (bolt's dispatch, matching,
Block Kit rendering, the chat.postMessage call, the store's writes). Note the machine load it prints:
on a shared machine the figures move with it.

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
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.slack_blocks import render  # noqa: E402 (after the path)
from adapters.slack_web import web_client  # noqa: E402
from bot.config import SlackSettings  # noqa: E402
from bot.conversation import Conversation, Message  # noqa: E402
from bot.knowledge_loader import load_knowledge  # noqa: E402
from bot.store import Store  # noqa: E402
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER_ID, FakeSlackApi  # noqa: E402

SECRET = "bench-signing-secret"
QUESTIONS = [
    "Can I add my manager on Facebook?",
    "Kan jeg legge ut bilder fra jobben?",
    "May I post photos from the office party?",
    "Hvor finner jeg retningslinjene for sosiale medier?",
    "Can I write about my job on LinkedIn?",
]
# The baseline: 200 for /slack/events; it also answers `{"ok": true}` as the Web API, so that the cost
# of a chat.postMessage call can be measured on our side without the fake's own work in this process.
BARE_SERVER = """
import sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.Response(text="")
async def api(request):
    await request.read()
    return web.json_response({"ok": True, "channel": "C0GENERAL", "ts": "1700000000.000100"})
app = web.Application()
app.router.add_post("/slack/events", ok)
app.router.add_post("/api/{method}", api)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""
# The floor: what any server that answers Slack must do at the least, and nothing more. It checks the
# signature and timestamp, parses the event, acknowledges, then makes one chat.postMessage over a shared
# keep-alive aiohttp session, with a fixed text: no bolt, no slack_sdk, no matching, no store, no
# retries, no logging. No real implementation can be cheaper, so its rate bounds what policybot can reach.
FLOOR_SERVER = """
import asyncio, hashlib, hmac, json, sys, time
import aiohttp
from aiohttp import web
port, secret, api, token = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3], sys.argv[4]
tasks = set()
async def answer(session, event):
    body = {"channel": event["channel"], "thread_ts": event["ts"], "text": "An answer."}
    auth = {"Authorization": "Bearer " + token}
    async with session.post(api + "chat.postMessage", json=body, headers=auth) as response:
        await response.json()
async def events(request):
    body = await request.read()
    stamp = request.headers.get("X-Slack-Request-Timestamp", "0")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
        return web.Response(status=401)
    mac = "v0=" + hmac.new(secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, request.headers.get("X-Slack-Signature", "")):
        return web.Response(status=401)
    payload = json.loads(body)
    if "event" in payload:
        task = asyncio.create_task(answer(request.app["session"], payload["event"]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    return web.Response(text="")
async def session(app):
    app["session"] = aiohttp.ClientSession()
    yield
    await app["session"].close()
app = web.Application()
app.cleanup_ctx.append(session)
app.router.add_post("/slack/events", events)
web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)
"""
TIME_LIMIT = 180.0  # seconds for the whole run, whatever the arguments
STAGE_RUNS = 300  # events per stage in the CPU breakdown


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far; Linux /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def stop(process: asyncio.subprocess.Process) -> None:
    """Terminate a server we started; kill it if it does not stop in time."""
    if process.returncode is None:
        process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


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


async def bench_bare(
    http: aiohttp.ClientSession, server: asyncio.subprocess.Process, port: int, events: int, concurrency: int
) -> tuple[float, float]:
    """Requests/s of the bare handler, and its server's CPU seconds per request."""
    url = f"http://127.0.0.1:{port}/slack/events"
    await wait_until_up(http, url)
    bodies = [mention(n, "000001")[1] for n in range(events)]
    await blast(http, url, bodies[: min(200, events)], concurrency)  # warm-up
    cpu = cpu_seconds(server.pid)
    start = time.perf_counter()
    await blast(http, url, bodies, concurrency)
    rate = events / (time.perf_counter() - start)
    return rate, (cpu_seconds(server.pid) - cpu) / events


async def answered(
    http: aiohttp.ClientSession,
    fake: FakeSlackApi,
    server: asyncio.subprocess.Process,
    port: int,
    *,
    events: int,
    concurrency: int,
) -> tuple[float, list[float], float]:
    """Events answered/s, each event's latency, and the server's CPU seconds per event."""
    url = f"http://127.0.0.1:{port}/slack/events"
    await wait_until_up(http, url)
    warm = [mention(n, "000002")[1] for n in range(min(200, events))]
    await blast(http, url, warm, concurrency)
    await fake.wait_for("chat.postMessage", n=len(warm), timeout=30)
    fake.calls.clear()

    pairs = [mention(n, "000003") for n in range(events)]
    cpu = cpu_seconds(server.pid)
    start = time.perf_counter()
    started = await blast(http, url, [body for _, body in pairs], concurrency)
    answers = await fake.wait_for("chat.postMessage", n=events, timeout=60)
    cpu = cpu_seconds(server.pid) - cpu
    fake.calls.clear()
    answered_at = {call.params["thread_ts"]: call.at for call in answers}
    latencies = [answered_at[ts] - started[i] for i, (ts, _) in enumerate(pairs)]
    rate = events / (max(answered_at.values()) - start)
    return rate, latencies, cpu / events


async def bench_floor(
    http: aiohttp.ClientSession, fake: FakeSlackApi, events: int, concurrency: int
) -> tuple[float, list[float], float]:
    """The least any answering server must do: FLOOR_SERVER, measured like policybot."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FLOOR_SERVER, str(port), SECRET, fake.api_url, BOT_TOKEN
    )
    try:
        return await answered(http, fake, server, port, events=events, concurrency=concurrency)
    finally:
        await stop(server)


async def bench_policybot(
    http: aiohttp.ClientSession, fake: FakeSlackApi, events: int, concurrency: int, workdir: Path
) -> tuple[float, list[float], float]:
    """`policybot serve` itself: the shipped knowledge base, SQLite, bolt, slack_sdk."""
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
        return await answered(http, fake, server, port, events=events, concurrency=concurrency)
    finally:
        await stop(server)


# -- where an answer's CPU goes: each stage alone, one event at a time, in this process --------------


async def per_event_cpu(runs: int, stage: Callable[[int], Awaitable[object]]) -> float:
    """CPU seconds (all of this process's threads) per call of `stage`, after a few warm-up calls.

    Every call gets its own number, so that each event is a new one.
    """
    warm_up = 10
    for n in range(warm_up):
        await stage(n)
    cpu = time.process_time()
    for n in range(warm_up, warm_up + runs):
        await stage(n)
    return (time.process_time() - cpu) / runs


async def stage_costs(fake: FakeSlackApi, web_api_url: str, workdir: Path) -> dict[str, float]:
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.request.async_request import AsyncBoltRequest

    costs: dict[str, float] = {}

    # bolt as SlackBot configures it, with a listener that does nothing: verification, parsing, built-in
    # middleware, the per-request WebClient bolt creates, listener matching, ack, the listener task.
    fake_client = web_client(SlackSettings(BOT_TOKEN, SECRET, api_url=fake.api_url))
    app = AsyncApp(client=fake_client, signing_secret=SECRET, process_before_response=False)
    listened = asyncio.Event()

    async def mentioned() -> None:
        listened.set()

    app.event("app_mention")(mentioned)

    async def dispatch(n: int) -> None:
        body = mention(n, "000004")[1]
        listened.clear()
        response = await app.async_dispatch(AsyncBoltRequest(body=body, headers=headers(body)))
        assert response.status == 200, response.body
        await listened.wait()  # the listener runs as a task after the ack, as in the server

    costs["bolt dispatch (verify, parse, middleware, ack, listener task)"] = await per_event_cpu(
        STAGE_RUNS, dispatch
    )

    kb = await load_knowledge(REPO / "knowledge")
    conversation = Conversation(kb)  # records nothing: the store is measured on its own below
    replies = [await conversation.handle(Message(text=q)) for q in QUESTIONS]

    async def ask(n: int) -> None:
        await conversation.handle(Message(text=QUESTIONS[n % len(QUESTIONS)]))

    costs["matching and reply (Conversation.handle)"] = await per_event_cpu(STAGE_RUNS, ask)

    async def blocks(n: int) -> None:
        render(replies[n % len(replies)], ask_hr=True)

    costs["Block Kit rendering"] = await per_event_cpu(STAGE_RUNS, blocks)

    client = web_client(SlackSettings(BOT_TOKEN, SECRET, api_url=web_api_url))
    client.session = aiohttp.ClientSession()
    message = render(replies[0], ask_hr=True)

    async def post(n: int) -> None:
        await client.api_call(
            "chat.postMessage",
            json={"channel": "C0GENERAL", "text": message.text, "blocks": message.blocks, "thread_ts": "1"},
        )

    try:
        costs["chat.postMessage call (slack_sdk + aiohttp client)"] = await per_event_cpu(STAGE_RUNS, post)
    finally:
        await client.session.close()

    store = await Store.open(f"sqlite:///{workdir}/stages.db")
    batch = 50

    async def store_writes(n: int) -> None:  # `batch` events' claims and questions at once
        await asyncio.gather(
            *(store.claim_event(f"EvS{n}-{i}") for i in range(batch)),
            *(store.record_question("q", "en", replies[0].kind, None, 0.5) for _ in range(batch)),
        )

    try:
        costs["store: claim + question (group commit, SQLite)"] = (
            await per_event_cpu(STAGE_RUNS // batch, store_writes) / batch
        )
    finally:
        await store.close()
    return costs


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max in milliseconds."""
    ms = sorted(latency * 1000 for latency in latencies)
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))], ms[-1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    events = max(1, min(args.events, 5000))
    concurrency = max(1, min(args.concurrency, 500))
    load_before = os.getloadavg()

    fake = await FakeSlackApi().start()
    bare_port = free_port()
    bare_server = await asyncio.create_subprocess_exec(sys.executable, "-c", BARE_SERVER, str(bare_port))
    connector = aiohttp.TCPConnector(limit=concurrency)
    try:
        async with aiohttp.ClientSession(connector=connector) as http, asyncio.timeout(TIME_LIMIT):
            bare, bare_cpu = await bench_bare(http, bare_server, bare_port, events, concurrency)
            floor, floor_latencies, floor_cpu = await bench_floor(http, fake, events, concurrency)
            with tempfile.TemporaryDirectory() as workdir:
                rate, latencies, cpu = await bench_policybot(http, fake, events, concurrency, Path(workdir))
                load_during = os.getloadavg()
                stages = await stage_costs(fake, f"http://127.0.0.1:{bare_port}/api/", Path(workdir))
    finally:
        await stop(bare_server)
        await fake.close()

    p50, p99, worst = percentiles(latencies)
    floor_p50, floor_p99, floor_worst = percentiles(floor_latencies)
    share = rate / bare
    print(f"{events} signed app_mention events, {concurrency} concurrent, over loopback")
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
        f"{load_during[0]:.2f} after the load runs (1-minute)"
    )
    print(f"bare aiohttp handler (200, no work):   {bare:8.0f} requests/s")
    print(f"floor (verify, ack, one POST, no work): {floor:7.0f} events answered/s = "
          f"{floor / bare:.0%} of bare; p50 {floor_p50:.1f} ms, p99 {floor_p99:.1f} ms, "
          f"max {floor_worst:.1f} ms")  # fmt: skip
    print(f"policybot serve (answer recorded):     {rate:8.0f} events answered/s = {share:.0%} of bare, "
          f"{rate / floor:.0%} of the floor")  # fmt: skip
    print(f"latency request -> chat.postMessage:   p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms")
    print(f"targets: >= 40% of bare rate: {'met' if share >= 0.4 else 'NOT met'}; "
          f"p99 < 100 ms: {'met' if p99 < 100 else 'NOT met'}")  # fmt: skip

    print("\nWhat limits it: CPU per request/event (ms)")
    print(f"  bare handler's server process:        {bare_cpu * 1000:6.3f}  (the inbound HTTP request)")
    print(
        f"  floor's server process:               {floor_cpu * 1000:6.3f}  (inbound + one outbound request)"
    )
    print(f"  policybot serve's server process:     {cpu * 1000:6.3f}  -> at most {1 / cpu:.0f} events/s "
          f"on one core; bare's CPU per request is {bare_cpu / cpu:.0%} of it")  # fmt: skip
    print("  each stage alone, in this process:")
    for stage, seconds in stages.items():
        print(f"    {stage:<62} {seconds * 1000:6.3f}")
    parts = bare_cpu + sum(stages.values())
    print(f"    {'sum with the inbound request':<62} {parts * 1000:6.3f}  "
          f"(rest: the event loop juggling tasks, logging, the ack's aiohttp response)")  # fmt: skip
    print(f"  40% of bare's rate means <= {bare_cpu / 0.4 * 1000:.3f} ms of server CPU per event.")
    print(f"  At {concurrency} requests in flight, Little's law puts the mean latency at >= "
          f"{concurrency / rate * 1000:.0f} ms at the measured rate; p99 < 100 ms needs "
          f">= {concurrency / 0.1:.0f} events/s.")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
