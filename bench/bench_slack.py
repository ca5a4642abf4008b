"""Slack cost per answer: policybot beside a hello-world slack-bolt bot, on the same load, in one run.

Four servers, each in its own subprocess, get the same signed `app_mention` events over loopback, and
the three that answer post to the same fake Slack Web API (tests/fakes, in this process):

- bare:      an aiohttp handler that answers 200 and does nothing else (no answer is posted);
- hello:     the bot a team would write itself: slack-bolt's `AsyncApp` with an `app_mention` listener
             that calls `say` (in the mention's thread), served by bolt's own aiohttp server
             (`app.start`: `AsyncSlackAppServer`, bolt's aiohttp adapter) — THE BASELINE;
- floor:     the least any answering server must do: verify the signature, ack, one chat.postMessage
             over a shared aiohttp session; no bolt, no slack_sdk, no logging;
- policybot: `policybot serve` itself (the shipped knowledge base, SQLite store, bolt, slack_sdk), started
             with an empty cache folder: a first start, as in a new container.

Two loads: a light one (10 events/s, paced, open loop) and a peak one (50 requests in flight, closed
loop). For each server and load: the server process's CPU ms per answer (utime + stime from
/proc/<pid>/stat, all threads), answers/s (request sent -> answer recorded by the fake), p50/p99 latency,
and RSS (idle: started and warmed up, before the loads; and after them), each as a ratio to the hello-world
bot measured in the same run. The targets (issue 13) are printed beside policybot's figures:

    CPU per answer at 10 events/s <= 1.5x hello   answers/s at 50 concurrent >= 1.0x hello
    p50 at 10 events/s <= hello + 2 ms            idle RSS <= 80 MiB

The machine is shared (2 cores, other work running): quote the ratios, run it 2-3 times, give ranges.
A full run also measures, in this process, the CPU each stage of an answer costs alone.

    python bench/bench_slack.py [--quick] [--events 1000] [--seconds 15] [--concurrency 50] [--rate 10]
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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
# A 200 for /slack/events; it also answers `{"ok": true}` as the Web API, so that the cost of a
# chat.postMessage call can be measured on our side without the fake's own work in this process.
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
# The hello-world bolt bot, as slack-bolt's getting-started guide writes it (token and signing secret,
# one listener that calls `say`, `app.start`), pointed at the fake Web API; it answers in the thread so
# that each answer can be matched to its event.
HELLO_SERVER = """
import sys
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
port, secret, api, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
app = AsyncApp(client=AsyncWebClient(token=token, base_url=api), signing_secret=secret)
@app.event("app_mention")
async def hello(event, say):
    await say(text=f"Hello, <@{event['user']}>!", thread_ts=event["ts"])
app.start(port=port, path="/slack/events", host="127.0.0.1")
"""
# What any server that answers Slack must do at the least, and nothing more. It checks the signature
# and timestamp, parses the event, acknowledges, then makes one chat.postMessage over a shared
# keep-alive aiohttp session, with a fixed text: no bolt, no slack_sdk, no matching, no store, no
# retries, no logging. No real implementation can be cheaper.
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
BASELINE = "hello"
STAGE_RUNS = 300  # events per stage in the CPU breakdown
MIB = 1024 * 1024
# The targets, as ratios to (or offsets from) the hello-world bot, and an absolute idle RSS.
TARGET_CPU_RATIO = 1.5  # CPU per answer at the light load
TARGET_RATE_RATIO = 1.0  # answers/s at the peak load
TARGET_P50_EXTRA_MS = 2.0  # p50 at the light load
TARGET_IDLE_RSS_MIB = 80.0


@dataclass
class Plan:
    """How much load: bounded whatever the arguments."""

    events: int  # peak: events sent with `concurrency` in flight
    concurrency: int
    rate: float  # light: events per second, paced
    seconds: float  # light: for this long
    warm_up: int
    time_limit: float  # for the whole run

    @property
    def light_events(self) -> int:
        return max(1, round(self.rate * self.seconds))


@dataclass
class Figures:
    """One server under one load."""

    answers: int
    cpu_s: float  # server CPU over the phase
    rate: float  # answers (bare: responses) per second
    latencies: list[float]  # seconds, request sent -> answer recorded

    @property
    def cpu_ms_per_answer(self) -> float:
        return self.cpu_s / self.answers * 1000

    def percentile(self, q: float) -> float:
        ms = sorted(latency * 1000 for latency in self.latencies)
        if q == 50:
            return statistics.median(ms)
        return ms[min(len(ms) - 1, int(len(ms) * q / 100))]


@dataclass
class Server:
    name: str
    label: str
    answers: bool  # False for the bare handler: its "answer" is the HTTP response
    process: asyncio.subprocess.Process | None = None
    port: int = 0
    idle_rss: float = 0.0  # bytes
    loaded_rss: float = 0.0
    figures: dict[str, Figures] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far, with that of the children it
    has waited for (`policybot serve` builds a new index snapshot in one, bot/index_cache.py); Linux /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> float:
    """Resident set size of a process (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) * 1024
    return 0.0


async def stop(process: asyncio.subprocess.Process) -> None:
    """Terminate a server we started; kill it if it does not stop in time."""
    if process.returncode is None:
        process.terminate()
        try:
            async with asyncio.timeout(15):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def mention(number: int, run: str) -> tuple[str, str]:
    """A signed app_mention body; its `ts` identifies the answer (every bot replies in its thread)."""
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


async def wait_until_up(http: aiohttp.ClientSession, server: Server, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.returncode is not None:
            raise SystemExit(f"{server.label} exited with {server.process.returncode} before it was up")
        try:
            async with http.post(server.url, data=b"{}") as response:
                await response.read()
                return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.05)
    raise SystemExit(f"{server.label} did not start in time")


async def send(http: aiohttp.ClientSession, url: str, body: str) -> None:
    async with http.post(url, data=body.encode(), headers=headers(body)) as response:
        await response.read()
        if response.status != 200:
            raise SystemExit(f"{url} answered HTTP {response.status}")


async def blast(http: aiohttp.ClientSession, url: str, bodies: list[str], concurrency: int) -> list[float]:
    """Send every body with `concurrency` in flight; return each request's start and response times."""
    started = [0.0] * len(bodies)
    done = [0.0] * len(bodies)
    queue = iter(range(len(bodies)))

    async def worker() -> None:
        for i in queue:
            started[i] = time.perf_counter()
            await send(http, url, bodies[i])
            done[i] = time.perf_counter()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return started + done


async def paced(http: aiohttp.ClientSession, url: str, bodies: list[str], rate: float) -> list[float]:
    """Send the bodies at `rate` per second whatever the responses (open loop); start and response times."""
    started = [0.0] * len(bodies)
    done = [0.0] * len(bodies)

    async def one(i: int) -> None:
        started[i] = time.perf_counter()
        await send(http, url, bodies[i])
        done[i] = time.perf_counter()

    begin = time.perf_counter()
    tasks = []
    for i in range(len(bodies)):
        await asyncio.sleep(max(0.0, begin + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return started + done


async def run_load(
    http: aiohttp.ClientSession, fake: FakeSlackApi, server: Server, load: str, plan: Plan, *, tag: str
) -> Figures:
    """One load on one server: CPU, answers/s and latency, answers matched to events by thread ts."""
    n = plan.light_events if load == "light" else plan.events
    pairs = [mention(i, tag) for i in range(n)]
    bodies = [body for _, body in pairs]
    fake.calls.clear()
    cpu = cpu_seconds(server.pid)
    start = time.perf_counter()
    if load == "light":
        times = await paced(http, server.url, bodies, plan.rate)
    else:
        times = await blast(http, server.url, bodies, plan.concurrency)
    started, responded = times[:n], times[n:]
    if server.answers:
        answers = await fake.wait_for("chat.postMessage", n=n, timeout=120)
        answered_at = {call.params["thread_ts"]: call.at for call in answers}
        finished = [answered_at[ts] for ts, _ in pairs]
    else:
        finished = responded
    cpu = cpu_seconds(server.pid) - cpu
    fake.calls.clear()
    latencies = [end - begin for begin, end in zip(started, finished, strict=True)]
    return Figures(answers=n, cpu_s=cpu, rate=n / (max(finished) - start), latencies=latencies)


def as_installed(env: dict[str, str]) -> dict[str, str]:
    """`env` for starting policybot from this checkout as an installed copy starts: with its modules'
    bytecode compiled beforehand, beside them (`__pycache__`, ignored by git), as pip compiles it at
    install. Run as CI runs it, with PYTHONDONTWRITEBYTECODE=1, every start would compile every module of
    ours anew (0.03 s of an `ask`). (Not PYTHONPYCACHEPREFIX: that moves every library's bytecode too,
    and the first process would compile all of them.)"""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    compile_all = [sys.executable, "-m", "compileall", "-q", str(REPO / "bot"), str(REPO / "adapters")]
    subprocess.run(compile_all, env=env, check=True, stdout=subprocess.DEVNULL)
    return env


async def start_servers(fake: FakeSlackApi, workdir: Path) -> list[Server]:
    """All four servers, started at once; each process's own environment without proxies."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy")}
    servers = [
        Server("bare", "bare aiohttp handler", answers=False),
        Server("hello", "hello-world bolt bot", answers=True),
        Server("floor", "floor", answers=True),
        Server("policybot", "policybot serve", answers=True),
    ]
    code = {"bare": BARE_SERVER, "hello": HELLO_SERVER, "floor": FLOOR_SERVER}
    for server in servers:
        server.port = free_port()
        if server.name == "policybot":
            server.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "adapters.cli", "serve", "--port", str(server.port),
                env=as_installed(env) | {
                    "PYTHONPATH": str(REPO),
                    "SLACK_BOT_TOKEN": BOT_TOKEN,
                    "SLACK_SIGNING_SECRET": SECRET,
                    "SLACK_API_URL": fake.api_url,
                    "DATABASE_URL": f"sqlite:///{workdir}/bench.db",
                    "POLICYBOT_KNOWLEDGE": str(REPO / "knowledge"),
                    # A cache of its own, new: a first start, as in a new container (a restart from the
                    # index snapshot idles about 13 MiB lower, see docs/development.md).
                    "POLICYBOT_CACHE_DIR": f"{workdir}/cache",
                },
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        else:
            server.process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", code[server.name], str(server.port), SECRET, fake.api_url, BOT_TOKEN,
                env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
    return servers


async def measure(plan: Plan, stages: bool) -> tuple[list[Server], dict[str, float], tuple[float, float]]:
    load_before = os.getloadavg()[0]
    fake = await FakeSlackApi().start()
    connector = aiohttp.TCPConnector(limit=max(plan.concurrency, 100))
    servers: list[Server] = []
    costs: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as workdir:
            async with aiohttp.ClientSession(connector=connector) as http, asyncio.timeout(plan.time_limit):
                servers = await start_servers(fake, Path(workdir))
                deadline = time.monotonic() + 60
                for server in servers:
                    await wait_until_up(http, server, deadline)
                warm = Plan(plan.warm_up, 10, 1, 1, 0, 0)
                for index, server in enumerate(servers):  # warm up (bolt's auth.test, lazy imports)
                    await run_load(http, fake, server, "peak", warm, tag=f"{index:03d}999")
                await asyncio.sleep(0.5)
                for server in servers:
                    server.idle_rss = rss_bytes(server.pid)
                # The loads one after the other, each across the servers in turn: a burst of other work
                # on the machine then hits one load of each server, not every load of one server.
                for number, load in enumerate(("light", "peak")):
                    for index, server in enumerate(servers):
                        tag = f"{index:03d}{number:03d}"  # event ids and ts new to every server and load
                        server.figures[load] = await run_load(http, fake, server, load, plan, tag=tag)
                for server in servers:
                    server.loaded_rss = rss_bytes(server.pid)
                bare = next(server for server in servers if server.name == "bare")
                if stages:
                    costs = await stage_costs(fake, f"http://127.0.0.1:{bare.port}/api/", Path(workdir))
            load_during = os.getloadavg()[0]
    finally:
        for server in servers:
            if server.process is not None:
                await stop(server.process)
        await fake.close()
    return servers, costs, (load_before, load_during)


# -- the table ----------------------------------------------------------------------------------------


def ratio(value: float, base: float) -> str:
    return f"{value / base:5.2f}x" if base else "    -"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(servers: list[Server], plan: Plan, load_avg: tuple[float, float]) -> list[str]:
    """The table, with ratios to the hello-world bot and the targets beside policybot's figures."""
    by_name = {server.name: server for server in servers}
    hello, bot = by_name[BASELINE], by_name["policybot"]
    lines = [
        f"Slack app_mention events over loopback: light = {plan.rate:g} events/s for {plan.seconds:g} s "
        f"({plan.light_events} events), peak = {plan.events} events with {plan.concurrency} in flight.",
        f"machine: {os.cpu_count()} CPUs, load average {load_avg[0]:.2f} before, {load_avg[1]:.2f} after "
        "(1-minute); ratios are to the hello-world bolt bot measured in this run.",
        "(bare answers nothing: its figures are per HTTP request, its latency request -> response)",
        "",
    ]
    columns = [  # heading, width
        ("", 22), ("CPU ms/answer", 12), ("", 12), ("answers/s", 7), ("", 13),
        ("p50 ms", 13), ("p99 ms", 7), ("p50 ms", 13), ("p99 ms", 7), ("RSS MiB", 11), ("", 6),
    ]  # fmt: skip
    under = ["", "light", "peak", "light", "peak", "light", "light", "peak", "peak", "idle", "loaded"]
    lines.append(" ".join(heading.rjust(width) for heading, width in columns))
    lines.append(" ".join(word.rjust(width) for word, (_, width) in zip(under, columns, strict=True)))
    hl, hp = hello.figures["light"], hello.figures["peak"]
    for server in servers:
        light, peak = server.figures["light"], server.figures["peak"]
        cells = [
            server.label.ljust(22),
            f"{light.cpu_ms_per_answer:5.2f} {ratio(light.cpu_ms_per_answer, hl.cpu_ms_per_answer)}",
            f"{peak.cpu_ms_per_answer:5.2f} {ratio(peak.cpu_ms_per_answer, hp.cpu_ms_per_answer)}",
            f"{light.rate:7.1f}",
            f"{peak.rate:6.0f} {ratio(peak.rate, hp.rate)}",
            f"{light.percentile(50):6.1f} {ratio(light.percentile(50), hl.percentile(50))}",
            f"{light.percentile(99):7.1f}",
            f"{peak.percentile(50):6.1f} {ratio(peak.percentile(50), hp.percentile(50))}",
            f"{peak.percentile(99):7.1f}",
            f"{server.idle_rss / MIB:4.0f} {ratio(server.idle_rss, hello.idle_rss)}",
            f"{server.loaded_rss / MIB:6.0f}",
        ]
        lines.append(" ".join(cells))
    cpu = bot.figures["light"].cpu_ms_per_answer / hello.figures["light"].cpu_ms_per_answer
    rate = bot.figures["peak"].rate / hello.figures["peak"].rate
    p50_extra = bot.figures["light"].percentile(50) - hello.figures["light"].percentile(50)
    idle = bot.idle_rss / MIB
    lines += [
        "",
        "policybot against the targets (issue 13):",
        f"  CPU per answer at {plan.rate:g} events/s:  {cpu:5.2f}x hello   target <= "
        f"{TARGET_CPU_RATIO}x     {verdict(cpu <= TARGET_CPU_RATIO)}",
        f"  answers/s at {plan.concurrency} concurrent:     {rate:5.2f}x hello   target >= "
        f"{TARGET_RATE_RATIO}x     {verdict(rate >= TARGET_RATE_RATIO)}",
        f"  p50 at {plan.rate:g} events/s:             {p50_extra:+5.2f} ms vs hello  target <= "
        f"+{TARGET_P50_EXTRA_MS:g} ms  {verdict(p50_extra <= TARGET_P50_EXTRA_MS)}",
        f"  idle RSS:                         {idle:5.0f} MiB        target <= "
        f"{TARGET_IDLE_RSS_MIB:g} MiB  {verdict(idle <= TARGET_IDLE_RSS_MIB)}",
    ]
    return lines


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


async def dispatch_cost(fake: FakeSlackApi) -> float:
    """CPU per event of what policybot does before its listener runs."""
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.request.async_request import AsyncBoltRequest

    from adapters.slack_guards import SlackGuard
    from adapters.slack_web import web_client
    from bot.config import SlackSettings

    # bolt as SlackBot configures it, with a listener that does nothing: the guard (verification on the
    # raw bytes, parsing, field types; adapters/slack_guards.py), bolt's parsing, built-in middleware,
    # the per-request WebClient bolt creates, listener matching, ack, the listener task.
    fake_client = web_client(SlackSettings(BOT_TOKEN, SECRET, api_url=fake.api_url))
    app = AsyncApp(
        client=fake_client,
        signing_secret=SECRET,
        process_before_response=False,
        request_verification_enabled=False,
    )
    guard = SlackGuard(SECRET)
    listened = asyncio.Event()

    async def mentioned() -> None:
        listened.set()

    app.event("app_mention")(mentioned)

    async def dispatch(n: int) -> None:
        body = mention(n, "000004")[1]
        listened.clear()
        sent = headers(body)
        text = guard.read(body.encode(), sent, "application/json")
        assert isinstance(text, str), text
        response = await app.async_dispatch(AsyncBoltRequest(body=text, headers=sent))
        assert response.status == 200, response.body
        await listened.wait()  # the listener runs as a task after the ack, as in the server

    return await per_event_cpu(STAGE_RUNS, dispatch)


async def stage_costs(fake: FakeSlackApi, web_api_url: str, workdir: Path) -> dict[str, float]:

    from adapters.slack_blocks import render
    from adapters.slack_web import web_client
    from bot.config import SlackSettings
    from bot.conversation import Conversation, Message
    from bot.knowledge_loader import load_knowledge
    from bot.store import Store

    costs: dict[str, float] = {}

    costs["guard and bolt dispatch (verify, parse, middleware, ack, listener task)"] = await dispatch_cost(
        fake
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

    async def store_writes(n: int) -> None:  # one event's claims and question, alone
        await asyncio.gather(
            store.claim_event(f"EvS{n}"),
            store.claim_event(f"slack-mention:C0GENERAL:{n}"),
            store.record_question("q", "en", replies[0].kind, None, 0.5),
        )

    try:
        costs["store: event + mention claims + question, one event alone (SQLite)"] = await per_event_cpu(
            STAGE_RUNS // 3, store_writes
        )
    finally:
        await store.close()
    return costs


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: little load, no stages")
    parser.add_argument("--events", type=int, default=None, help="peak events (default 1000; quick 100)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="light load, events/s")
    parser.add_argument("--seconds", type=float, default=None, help="light load length (default 15; quick 2)")
    args = parser.parse_args()
    events = args.events if args.events is not None else (100 if args.quick else 1000)
    seconds = args.seconds if args.seconds is not None else (2.0 if args.quick else 15.0)
    plan = Plan(
        events=max(1, min(events, 5000)),
        concurrency=max(1, min(args.concurrency, 500)),
        rate=max(0.5, min(args.rate, 200.0)),
        seconds=max(0.5, min(seconds, 60.0)),
        warm_up=20 if args.quick else 100,
        time_limit=120.0 if args.quick else 400.0,
    )
    servers, costs, load_avg = await measure(plan, stages=not args.quick)
    print("\n".join(report(servers, plan, load_avg)))
    if costs:
        print("\nWhere the CPU goes: each stage alone, in this process (ms per event)")
        for stage, seconds_per_event in costs.items():
            print(f"  {stage:<70} {seconds_per_event * 1000:6.3f}")


if __name__ == "__main__":
    asyncio.run(main())
