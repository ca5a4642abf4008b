"""Privacy, end to end: a realistic morning on Slack and Teams through the real server, then every table
of the database and every line of the log are read, and no person, e-mail or channel id is found next to
what was asked.

One policybot serves both platforms (Teams anonymously, in development mode) against the fakes of the
Slack Web API and the Bot Connector. People are asked about by mention (Slack `<@U…>`, Teams `<at>…</at>`),
by mail link and by channel link; they vote, pick a related answer, ask HR, and HR answers.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from adapters.server import build_app
from adapters.services import Services
from bot.config import Settings
from bot.conversation import Conversation
from bot.knowledge_loader import load_knowledge
from bot.store import Store
from tests.adapters import slack_harness, teams_harness
from tests.adapters.slack_harness import ASKER, HR_CHANNEL, SECRET, payload, signed
from tests.conftest import write_kb
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER_ID, FakeSlackApi

HR_TEAMS = "19:hr-questions@thread.tacv2"

# Who must never be found next to a question: the askers, the people they asked about, their addresses,
# and the conversations they asked in.
PEOPLE = [
    ASKER, "U0PEROLSEN", "per.olsen", "Per Olsen", "per@example.com", "Ola Nordmann", "29:user-ola",
    "kari.nordmann@example.com", "Kari Nordmann", "29:user-kari", "6b1f7c1e-0000-4000-8000-00000000000a",
]  # fmt: skip
PLACES = ["D0ASKER01", "C0GENERAL", "C0SECRET1", "a:1-personal-kari", "19:general@thread.tacv2"]
# Words of each question asked (the store keeps questions, masked; the log should keep none).
ASKED = ["Facebook", "selfie", "crypto", "bilder", "blogge"]


@dataclass
class Both:
    slack: slack_harness.Policybot
    teams: teams_harness.Policybot
    database: Path
    runner: web.AppRunner
    stopped: bool = False

    async def stop(self) -> None:
        """Shut the server down the way SIGTERM does: every queued record is written."""
        if not self.stopped:
            self.stopped = True
            await self.runner.cleanup()
            await self.slack.store.close()


@pytest.fixture
async def both(
    tmp_path: Path, slack_api: FakeSlackApi, bot_connector: FakeBotConnector
) -> AsyncIterator[Both]:
    kb_dir = write_kb(tmp_path / "knowledge")
    database = tmp_path / "policybot.db"
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack_api.api_url,
        "POLICYBOT_HR_CHANNEL": HR_CHANNEL,
        "POLICYBOT_ENV": "development",
        "POLICYBOT_HR_TEAMS_CONVERSATION": HR_TEAMS,
        "DATABASE_URL": f"sqlite:///{database}",
        "POLICYBOT_KNOWLEDGE": str(kb_dir),
    }
    settings = Settings.from_env(env)
    store = await Store.open(settings.database_url)
    conversation = Conversation(await load_knowledge(kb_dir), recorder=store)
    services = Services.assemble(settings, conversation, store)
    app = build_app(services)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with aiohttp.ClientSession() as http:
        both = Both(
            slack_harness.Policybot(url, slack_api, store, http),
            teams_harness.Policybot(url, app, store, conversation, bot_connector, http, services),
            database,
            runner,
        )
        yield both
        await both.stop()


async def slack_morning(bot: slack_harness.Policybot) -> None:
    fake = bot.fake
    # Kari asks in a DM, about a colleague by mention and with her own address
    await bot.dm("Can I add <@U0PEROLSEN|per.olsen> on Facebook? <mailto:kari.nordmann@example.com|me>")
    [answer] = await fake.wait_for("chat.postMessage")
    await bot.click(answer, "feedback_yes", name="vote")
    await bot.click(answer, "related_0", name="related")
    # … in a channel, mentioning the bot, a colleague and a private channel
    mention = payload("app_mention")
    mention["event"]["text"] = f"<@{BOT_USER_ID}> may I take a selfie with <@U0PEROLSEN> for <#C0SECRET1>?"
    await bot.event(mention)
    # … something the bot cannot answer, about a person by mail link; she asks HR, and HR answers
    again = payload("message_im") | {"event_id": "Ev0IM00002"}
    await bot.event(
        again, text="What about <mailto:per@example.com|Per Olsen> and crypto?", ts="1700000300.1"
    )
    posts = await fake.wait_for("chat.postMessage", n=4)
    [fallback] = [post for post in posts if "EN fallback" in post.text]
    await bot.click(fallback, "ask_hr", name="ask")
    await fake.wait_for("response_url")  # "sent to HR"
    reply = copy.deepcopy(payload("message_hr_thread"))
    reply["event"]["thread_ts"] = fake.last_ts
    text = json.dumps(reply)
    assert (await bot.post(text, "application/json", signed(text)))[0] == 200
    # … and someone forges a request with her question in it
    forged = json.dumps(payload("message_im") | {"event_id": "Ev0FORGED"})
    assert (await bot.post(forged, "application/json", signed(forged, secret="guess")))[0] == 401
    await fake.settle()


async def teams_morning(bot: teams_harness.Policybot) -> None:
    connector = bot.connector
    per = {
        "type": "mention",
        "text": "<at>Per Olsen</at>",
        "mentioned": {"id": "29:user-per", "name": "Per Olsen"},
    }
    asked = teams_harness.activity(
        "personal_message", connector, text="can I add <at>Per Olsen</at> on Facebook?", entities=[per]
    )
    assert (await bot.post(asked))[0] == 200
    ola = {
        "type": "mention",
        "text": "<at>Ola Nordmann</at>",
        "mentioned": {"id": "29:user-ola", "name": "Ola"},
    }
    bot_mention = {"type": "mention", "text": "<at>policybot</at>", "mentioned": {"id": "28:policybot-app"}}
    in_channel = teams_harness.activity(
        "channel_mention",
        connector,
        text="<at>policybot</at> kan jeg legge ut bilder av <at>Ola Nordmann</at>?",
        entities=[bot_mention, ola],
    )
    assert (await bot.post(in_channel))[0] == 200
    vote = {"policybot": "feedback", "entry": "friend-manager", "helpful": False, "lang": "en"}
    assert (await bot.post(teams_harness.activity("card_action", connector, value=vote)))[0] == 200
    ask = {"policybot": "ask_hr", "lang": "nb", "question": "Kan jeg blogge om [someone]?"}
    card = teams_harness.activity("card_action", connector, id="1700000000301", value=ask)
    assert (await bot.post(card))[0] == 200


def rows(database: Path) -> dict[str, list[str]]:
    """Every row of every table, as one string per row."""
    with sqlite3.connect(database) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            table: [" | ".join(map(str, row)) for row in db.execute(f'SELECT * FROM "{table}"')]
            for table in tables
        }


async def test_nothing_stored_or_logged_ties_a_person_or_a_place_to_a_question(
    both: Both, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # what `policybot serve` logs

    await slack_morning(both.slack)
    await teams_morning(both.teams)
    await both.stop()

    stored = rows(both.database)
    questions = [row for table in stored.values() for row in table if any(w in row for w in ASKED)]
    assert len(questions) >= 4, stored  # the questions were kept, for HR …
    assert any("[someone]" in row for row in questions)
    for row in questions:  # … and none of them with a person or a place
        assert [who for who in PEOPLE + PLACES if who.lower() in row.lower()] == [], row
    everything = "\n".join(row for table in stored.values() for row in table).lower()
    # … nor anything with a time that could be matched with theirs: questions are dated to the hour, and
    # the route back to whoever asked HR is neither filed under its HR post's time nor expires to the second
    assert all(re.search(r" \d\d:00:00(\.0+)?(\+00:00)? \|", row) for row in stored["questions"])
    assert both.slack.fake.last_ts.split(".")[0] not in everything
    assert all(re.search(r"\| \S+ 00:00:00(\.0+)?(\+00:00)?$", row) for row in stored["escalation_routes"])
    for third_party in ("per olsen", "per.olsen", "per@example.com", "ola nordmann", "u0perolsen"):
        assert third_party not in everything  # the people asked about are nowhere at all

    logged = [record.getMessage() for record in caplog.records]
    assert [line for line in logged if any(w.lower() in line.lower() for w in ASKED)] == []
    assert [line for line in logged if any(who.lower() in line.lower() for who in PEOPLE)] == []
