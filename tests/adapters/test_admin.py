"""HR admins over real HTTP: `/policy reload|report|tip now|why …` in Slack, the same words in Teams, the
HR channel told about a broken edit, and `/healthz` showing what is served. Anyone who is not an admin
gets the polite refusal and nothing happens.

Slack requests are signed like Slack signs them; Teams activities are posted to the anonymous
development endpoint. What the bot sends is recorded by the fakes (tests/fakes/).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from adapters.server import build_app
from adapters.services import Services
from adapters.slack_blocks import to_mrkdwn
from bot.config import Settings
from bot.conversation import Conversation
from bot.knowledge_loader import load_knowledge
from bot.reload import Reloader
from bot.report import summary
from bot.store import Store
from tests.adapters.slack_harness import SECRET, cli_env, free_port, payload, signed
from tests.adapters.teams_harness import activity
from tests.conftest import ENTRIES, wait_until_serving
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import BOT_TOKEN, Call, FakeSlackApi

SLACK_ADMIN = "U0HRADMIN"
SLACK_EMPLOYEE = "U0ASKER01"
TEAMS_ADMIN = "a11ce000-0000-4000-8000-0000000000ad"  # an AAD object id
TEAMS_EMPLOYEE = "6b1f7c1e-0000-4000-8000-00000000000a"  # Kari, in payloads/teams/personal_message.json
HR_CHANNEL = "C0HRDESK"
TIP_CHANNEL = "C0TIPS"
HR_CONVERSATION = "19:hr-questions@thread.tacv2"


def broken(directory: Path) -> None:
    """HR saves a file with a date that is not one (line 22)."""
    text = ENTRIES.replace("reviewed: 2026-11-01", "reviewed: 1 November")
    (directory / "entries.yaml").write_text(text, encoding="utf-8")


def edited(directory: Path) -> None:
    text = ENTRIES.replace("Adding your manager on social media", "Your manager on social media")
    (directory / "entries.yaml").write_text(text, encoding="utf-8")


@dataclass
class Running:
    url: str
    services: Services
    http: aiohttp.ClientSession
    kb_dir: Path

    async def health(self) -> dict[str, Any]:
        async with self.http.get(self.url + "/healthz") as response:
            assert response.status == 200
            return dict(await response.json())


@asynccontextmanager
async def running(env: dict[str, str], tmp_path: Path, kb_dir: Path) -> AsyncIterator[Running]:
    """The real app on 127.0.0.1, with a reloader that notices a save within a fraction of a second."""
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'policybot.db'}", **env})
    store = await Store.open(settings.database_url)
    conversation = Conversation(await load_knowledge(kb_dir), recorder=store)
    reloader = Reloader(conversation, kb_dir, debounce_ms=50, step_ms=10)
    services = Services.assemble(settings, conversation, store, reloader=reloader)
    runner = web.AppRunner(build_app(services), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Running(f"http://127.0.0.1:{runner.addresses[0][1]}", services, http, kb_dir)
    finally:
        await runner.cleanup()
        await conversation.drain()
        await store.close()


# ---------------------------------------------------------------------------------------------- Slack


@dataclass
class SlackPolicybot(Running):
    fake: FakeSlackApi

    async def command(self, text: str, user: str) -> Call:
        """`/policy <text>` typed by `user`; returns the (ephemeral) answer posted to the response_url."""
        before = self.fake.count("response_url")
        name = f"r{before}"
        form = payload("slash_command") | {
            "text": text,
            "user_id": user,
            "response_url": self.fake.response_url(name),
        }
        body = urlencode(form)
        headers = {"Content-Type": "application/x-www-form-urlencoded", **signed(body)}
        async with self.http.post(
            self.url + "/slack/events", data=body.encode(), headers=headers
        ) as response:
            assert response.status == 200
        calls = await self.fake.wait_for("response_url", before + 1)
        return calls[before]


@pytest.fixture
async def slack(tiny_kb_dir: Path, tmp_path: Path, slack_api: FakeSlackApi) -> AsyncIterator[SlackPolicybot]:
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack_api.api_url,
        "POLICYBOT_HR_CHANNEL": HR_CHANNEL,
        "POLICYBOT_ADMINS": f"{SLACK_ADMIN}, {TEAMS_ADMIN}",
        "POLICYBOT_TIP_SLACK_CHANNELS": TIP_CHANNEL,
    }
    async with running(env, tmp_path, tiny_kb_dir) as bot:
        yield SlackPolicybot(bot.url, bot.services, bot.http, bot.kb_dir, slack_api)


@pytest.mark.parametrize("command", ["reload", "report", "tip now", "Reload!", "/reload"])
async def test_slack_admin_commands_are_refused_for_everyone_else_and_nothing_happens(
    slack: SlackPolicybot, command: str
) -> None:
    served = (await slack.health())["knowledge"]
    edited(slack.kb_dir)

    answer = await slack.command(command, SLACK_EMPLOYEE)

    assert answer.params["text"] == "EN not_allowed"
    assert answer.params["response_type"] == "ephemeral"
    await slack.fake.settle(0.1)
    assert (await slack.health())["knowledge"] == served  # not reloaded
    assert slack.fake.calls_to("chat.postMessage") == []  # no tip posted, no note to HR


async def test_an_employees_own_why_question_is_answered_not_diagnosed(slack: SlackPolicybot) -> None:
    answer = await slack.command("why can I add my manager on Facebook?", SLACK_EMPLOYEE)

    assert "Adding your manager on social media" in answer.text
    assert "Runners-up" not in answer.text and "score" not in answer.text


async def test_an_admin_reloads_from_slack_and_healthz_shows_the_new_version(slack: SlackPolicybot) -> None:
    before = await slack.health()
    edited(slack.kb_dir)

    answer = await slack.command("reload", SLACK_ADMIN)

    after = await slack.health()
    assert after["knowledge"]["version"] != before["knowledge"]["version"]
    assert after["knowledge_version"] == after["knowledge"]["version"]
    assert answer.params["text"] == f"EN reload_ok {after['knowledge']['version']}"
    assert after["knowledge"]["rejected"] is None and after["knowledge"]["loaded_at"]


async def test_a_broken_edit_reaches_the_hr_channel_and_the_bot_keeps_answering(
    slack: SlackPolicybot,
) -> None:
    assert slack.services.reloader is not None
    served = (await slack.health())["knowledge"]["version"]
    stop = asyncio.Event()
    watcher = asyncio.create_task(slack.services.reloader.watch(stop))
    try:
        await asyncio.sleep(0.2)  # the watch is set up
        broken(slack.kb_dir)  # HR saves; nobody types anything
        [note] = await slack.fake.wait_for("chat.postMessage")
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 5)

    assert note.params["channel"] == HR_CHANNEL
    assert note.text.startswith("EN reload_failed 1\n")
    assert "`entries.yaml:22:15`: error [friend-manager]: '1 November' is not a date" in note.text
    health = await slack.health()
    assert health["status"] == "ok" and health["knowledge"]["version"] == served
    assert health["knowledge"]["rejected"]["problems"] == 1 and health["knowledge"]["rejected"]["at"]

    answer = await slack.command("Can I add my manager on Facebook?", SLACK_EMPLOYEE)
    assert "Adding your manager on social media" in answer.text  # the last good version

    reply = await slack.command("reload", SLACK_ADMIN)  # the admin asks; same problems: HR not told twice
    assert reply.text.startswith("EN reload_failed 1\n") and "entries.yaml:22:15" in reply.text
    await slack.fake.settle(0.1)
    assert slack.fake.count("chat.postMessage") == 1


async def test_an_admin_asks_why_a_question_gets_its_answer(slack: SlackPolicybot) -> None:
    answer = await slack.command("why my boss in photos on facebook", SLACK_ADMIN)

    lines = answer.params["text"].splitlines()
    assert lines[0] == "*why* “my boss in photos on facebook” (en)"
    assert lines[1].startswith("The bot answers with *friend-manager* — ")
    assert lines[1].endswith("% (answer_when_sure, fitted on this knowledge base's own examples).")
    assert lines[2].startswith("Closest example: “") and "” in *friend-manager* (score 0." in lines[2]
    assert "words shared with the entry 0." in lines[2] and "resembles its examples 0." in lines[2]
    assert "(its own examples usually 0." in lines[2]
    assert lines[3] == "Runners-up:"
    assert lines[4].startswith("• *workplace-photos* 0.") and "“Can I post photos from work?”" in lines[4]
    assert lines[5] == "Words understood: `manager`, `photo`, `facebook`"


async def test_an_admin_posts_the_tip_now_to_every_tip_channel(slack: SlackPolicybot) -> None:
    answer = await slack.command("tip now", SLACK_ADMIN)

    [tip] = slack.fake.calls_to("chat.postMessage")
    assert tip.params["channel"] == TIP_CHANNEL and "EN tip" in tip.text
    assert f"`slack:{TIP_CHANNEL}` [en]: " in answer.text and " posted" in answer.text


async def test_an_admin_gets_the_report_summary_in_chat(slack: SlackPolicybot) -> None:
    await slack.command("Can I add my manager on Facebook?", SLACK_EMPLOYEE)
    await slack.command("how do I reset my password", SLACK_EMPLOYEE)
    await slack.services.conversation.drain()

    answer = await slack.command("report", SLACK_ADMIN)

    expected = await summary(slack.services.store, slack.services.conversation.kb, "en")
    assert answer.params["text"] == to_mrkdwn(expected)


# ---------------------------------------------------------------------------------------------- Teams


@dataclass
class TeamsPolicybot(Running):
    connector: FakeBotConnector

    async def say(self, text: str, who: str, **changes: Any) -> str:
        """`who` (an AAD object id) writes `text` to the bot in personal chat; returns what it answered."""
        before = len(self.connector.calls)
        body = activity("personal_message", self.connector, text=text, **changes)
        body["from"]["aadObjectId"] = who
        body["id"] = f"msg-{before}-{len(text)}"
        async with self.http.post(self.url + "/api/messages", json=body) as response:
            assert response.status == 200
        [call] = [c for c in self.connector.calls[before:] if c.conversation_id == body["conversation"]["id"]]
        if call.card is not None:
            return "\n".join(call.card_texts())
        return str(call.text)


@pytest.fixture
async def teams(
    tiny_kb_dir: Path,
    tmp_path: Path,
    bot_connector: FakeBotConnector,
) -> AsyncIterator[TeamsPolicybot]:
    env = {
        "POLICYBOT_ENV": "development",
        "POLICYBOT_ADMINS": f"{SLACK_ADMIN},{TEAMS_ADMIN}",
        "POLICYBOT_HR_TEAMS_CONVERSATION": HR_CONVERSATION,
    }
    async with running(env, tmp_path, tiny_kb_dir) as bot:
        yield TeamsPolicybot(bot.url, bot.services, bot.http, bot.kb_dir, bot_connector)


async def install_in_hr_team(bot: TeamsPolicybot) -> None:
    body = activity("install_team", bot.connector)
    body["conversation"]["id"] = body["channelData"]["team"]["id"] = HR_CONVERSATION
    async with bot.http.post(bot.url + "/api/messages", json=body) as response:
        assert response.status == 200


@pytest.mark.parametrize("command", ["reload", "report", "tip now"])
async def test_teams_admin_commands_are_refused_for_everyone_else_and_nothing_happens(
    teams: TeamsPolicybot, command: str
) -> None:
    await install_in_hr_team(teams)
    served = (await teams.health())["knowledge"]
    edited(teams.kb_dir)

    assert await teams.say(command, TEAMS_EMPLOYEE) == "EN not_allowed"
    assert (await teams.health())["knowledge"] == served  # not reloaded
    assert teams.connector.calls_to(HR_CONVERSATION) == []  # no tip posted


async def test_an_admin_reloads_from_teams(teams: TeamsPolicybot) -> None:
    edited(teams.kb_dir)

    answer = await teams.say("reload", TEAMS_ADMIN)

    assert answer == f"EN reload_ok {(await teams.health())['knowledge']['version']}"
    assert "Your manager on social media" in await teams.say(
        "Can I add my manager on Facebook?", TEAMS_EMPLOYEE
    )


async def test_a_broken_edit_reloaded_from_teams_tells_the_admin_and_the_hr_conversation(
    teams: TeamsPolicybot,
) -> None:
    await install_in_hr_team(teams)
    broken(teams.kb_dir)

    answer = await teams.say("Reload", TEAMS_ADMIN, locale="nb-NO")

    assert answer.startswith("NB reload_failed 1\n")
    assert "`entries.yaml:22:15`: error [friend-manager]: '1 November' is not a date" in answer
    [note] = [c for c in teams.connector.calls_to(HR_CONVERSATION) if c.text]
    assert (
        note.text is not None
        and note.text.startswith("EN reload_failed 1\n")
        and "entries.yaml:22:15" in note.text
    )
    assert (await teams.health())["knowledge"]["rejected"]["problems"] == 1


async def test_teams_why_and_tip_now_for_an_admin(teams: TeamsPolicybot) -> None:
    await install_in_hr_team(teams)

    why = await teams.say("why is filming at work allowed", TEAMS_ADMIN)
    assert "The bot answers with *workplace-photos*" in why and "Closest example" in why

    employee = await teams.say("why is filming at work allowed", TEAMS_EMPLOYEE)
    assert "Photos and video at work" in employee and "Closest example" not in employee

    answer = await teams.say("tip now", TEAMS_ADMIN)
    [tip] = [c for c in teams.connector.calls_to(HR_CONVERSATION) if c.card is not None]
    assert "EN tip" in tip.card_texts()
    assert f"`teams:{HR_CONVERSATION}` [en]: " in answer and " posted" in answer


# ------------------------------------------------------------------------------- the running server


async def test_policybot_serve_reloads_on_sighup_and_shows_it_on_healthz(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(tmp_path, POLICYBOT_WATCH_KNOWLEDGE="off")
    kb_dir = Path(env["POLICYBOT_KNOWLEDGE"])
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:

            async def health() -> dict[str, Any]:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    return dict(await response.json())

            await wait_until_serving(http, port)
            first = await health()
            edited(kb_dir)
            await asyncio.sleep(0.3)
            assert (await health())["knowledge"] == first["knowledge"]  # watching is off: nothing yet

            process.send_signal(signal.SIGHUP)
            second = await poll(health, lambda h: h["knowledge"]["version"] != first["knowledge"]["version"])
            assert second["knowledge"]["rejected"] is None

            broken(kb_dir)
            process.send_signal(signal.SIGHUP)
            third = await poll(health, lambda h: h["knowledge"]["rejected"] is not None)
            assert third["knowledge"]["version"] == second["knowledge"]["version"]
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 10)
        log = stderr.decode()
        assert process.returncode == 0, log
        assert "knowledge base edit rejected (SIGHUP): 1 problem(s)" in log
        assert "entries.yaml:22:15: error [friend-manager]: '1 November' is not a date" in log
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def poll(
    fetch: Callable[[], Any], done: Callable[[dict[str, Any]], bool], within: float = 20.0
) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            try:
                value: dict[str, Any] = await fetch()
            except aiohttp.ClientConnectionError:
                value = {}
            if value and done(value):
                return value
            await asyncio.sleep(0.05)
