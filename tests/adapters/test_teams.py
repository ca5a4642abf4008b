"""Teams, end to end over real HTTP: activities go to the running policybot server at /api/messages, and
a local fake of the Bot Connector service (the activities' `serviceUrl`) records what the bot sends back.

The tiny knowledge base's sentences read "EN <key> ..." / "NB <key> ...", so the language of every reply
is visible in its text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters import teams
from bot.errors import DeliveryError
from bot.tips import Target
from tests.adapters.teams_harness import (
    APP_ID,
    CHANNEL,
    HR_CONVERSATION,
    PERSONAL,
    Policybot,
    activity,
    start_policybot,
)
from tests.fakes.bot_connector import FakeBotConnector


@pytest.fixture
async def policybot(
    tiny_kb_dir: Path,
    tmp_path: Path,
    bot_connector: FakeBotConnector,
) -> AsyncIterator[Policybot]:
    """policybot in development mode (anonymous Teams endpoint), with an HR conversation for Teams."""
    messages = tiny_kb_dir / "messages.yaml"  # name the asker in the HR message (an optional placeholder)
    messages.write_text(messages.read_text(encoding="utf-8").replace("{question}", "{question} {user}"))
    env = {"POLICYBOT_ENV": "development", "POLICYBOT_HR_TEAMS_CONVERSATION": HR_CONVERSATION}
    async with start_policybot(env, tiny_kb_dir, tmp_path, bot_connector) as running:
        yield running


def submit_data(call: Any) -> list[dict[str, Any]]:
    return [action["data"] for action in call.card_actions() if action["type"] == "Action.Submit"]


# -------------------------------------------------------------------------------------- personal chat


async def test_a_question_in_personal_chat_gets_an_answer_card_threaded_to_it(policybot: Policybot) -> None:
    status, _ = await policybot.post(activity("personal_message", policybot.connector))

    assert status == 200
    [call] = policybot.connector.calls
    assert (call.method, call.conversation_id, call.activity_id) == ("POST", PERSONAL, "1700000000001")
    assert call.activity["replyToId"] == "1700000000001"
    card = call.card
    assert card is not None
    assert card["type"] == "AdaptiveCard" and card["version"] in ("1.4", "1.5")
    texts = call.card_texts()
    assert texts[0] == "Adding your manager on social media"
    assert texts[1] == "Yes, you may — but you never have to. Decline politely if you prefer."
    assert "EN related" in texts
    assert any(t.startswith("EN footer_source Guidelines 2.1") for t in texts)
    assert "EN feedback_prompt" in texts
    titles = [action["title"] for action in call.card_actions()]
    assert titles == ["Photos and video at work", "EN feedback_yes", "EN feedback_no", "EN ask_hr"]
    assert all(action["type"] == "Action.Submit" for action in call.card_actions())  # never Action.Execute
    assert submit_data(call) == [
        {"policybot": "pick", "entry": "workplace-photos", "lang": "en", "question": ""},
        {"policybot": "feedback", "entry": "friend-manager", "helpful": True, "lang": "en"},
        {"policybot": "feedback", "entry": "friend-manager", "helpful": False, "lang": "en"},
        {"policybot": "ask_hr", "lang": "en", "question": "Can I add my manager on Facebook?"},
    ]


async def test_a_norwegian_question_is_answered_in_norwegian(policybot: Policybot) -> None:
    body = activity(
        "personal_message",
        policybot.connector,
        text="Kan jeg legge til sjefen min på Facebook?",
        locale="nb-NO",
    )
    await policybot.post(body)

    [call] = policybot.connector.calls
    texts = call.card_texts()
    assert texts[0] == "Legge til lederen din i sosiale medier"
    assert texts[1].startswith("Ja, det kan du")
    assert [a["title"] for a in call.card_actions()][-3:] == [
        "NB feedback_yes",
        "NB feedback_no",
        "NB ask_hr",
    ]


async def test_the_language_follows_the_question_not_the_locale(policybot: Policybot) -> None:
    body = activity("personal_message", policybot.connector, locale="nb-NO")  # English text
    await policybot.post(body)

    [call] = policybot.connector.calls
    assert call.card_texts()[0] == "Adding your manager on social media"


async def test_commands_work_in_both_languages(policybot: Policybot) -> None:
    for number, (text, expected) in enumerate(
        [("help", "EN help"), ("hjelp", "NB help"), ("topics", "EN topics"), ("emner", "NB topics")]
    ):
        body = activity("personal_message", policybot.connector, text=text, id=f"command-{number}")
        await policybot.post(body)
        assert policybot.connector.calls[-1].card_texts()[0] == expected

    topics = policybot.connector.calls[-1]
    assert [a["title"] for a in topics.card_actions()] == [
        "Legge til lederen din i sosiale medier",
        "Bilder og video på jobben",
    ]
    await policybot.post(
        activity("personal_message", policybot.connector, text="tips", locale="nb-NO", id="tip")
    )
    tip = policybot.connector.calls[-1].card_texts()
    assert tip[0] == "NB tip"
    assert tip[1] in {
        "Før du legger ut et bilde fra jobben, sjekk bakgrunnen.",
        "Du må aldri godta en venneforespørsel fra lederen din.",
    }


async def test_a_redelivered_message_is_answered_once(policybot: Policybot) -> None:
    body = activity("personal_message", policybot.connector)
    assert (await policybot.post(body))[0] == 200
    assert (await policybot.post(body))[0] == 200

    assert len(policybot.connector.calls) == 1


# ---------------------------------------------------------------------------------- channels and groups


async def test_a_mention_in_a_channel_is_answered_in_the_same_thread(policybot: Policybot) -> None:
    await policybot.post(activity("channel_mention", policybot.connector))

    [call] = policybot.connector.calls
    assert call.conversation_id == "19:general@thread.tacv2;messageid=1700000000100"
    assert call.activity_id == "1700000000200"
    texts = call.card_texts()
    assert texts[:2] == [
        "Bilder og video på jobben",
        "Sjekk at ingen kunder, kolleger eller skjermer er med uten samtykke.",
    ]
    links = [a for a in call.card_actions() if a["type"] == "Action.OpenUrl"]
    assert links == [
        {"type": "Action.OpenUrl", "title": "Fotoregler", "url": "https://intranet.example.com/photos"}
    ]


async def test_channel_and_group_messages_without_a_mention_are_left_alone(policybot: Policybot) -> None:
    channel = activity(
        "channel_mention", policybot.connector, text="Kan jeg legge ut bilder fra jobben?", entities=[]
    )
    someone_else = activity(
        "channel_mention",
        policybot.connector,
        id="1700000000201",
        text="<at>Ola</at> kan jeg legge ut bilder?",
        entities=[
            {"type": "mention", "text": "<at>Ola</at>", "mentioned": {"id": "29:user-ola", "name": "Ola"}}
        ],
    )
    group = activity(
        "personal_message",
        policybot.connector,
        id="1700000000202",
        conversation={"id": "19:group-chat@thread.v2", "conversationType": "groupChat", "isGroup": True},
    )
    for body in (channel, someone_else, group):
        assert (await policybot.post(body))[0] == 200

    assert policybot.connector.calls == []


async def test_a_mention_in_a_group_chat_is_answered_there(policybot: Policybot) -> None:
    body = activity(
        "personal_message",
        policybot.connector,
        text="<at>policybot</at>&nbsp;help",
        conversation={"id": "19:group-chat@thread.v2", "conversationType": "groupChat", "isGroup": True},
        entities=[
            {
                "type": "mention",
                "text": "<at>policybot</at>",
                "mentioned": {"id": "28:policybot-app", "name": "x"},
            }
        ],
    )
    await policybot.post(body)

    [call] = policybot.connector.calls
    assert call.conversation_id == "19:group-chat@thread.v2"
    assert call.card_texts() == ["EN help"]


# ---------------------------------------------------------------------------------------- card buttons


async def test_feedback_is_recorded_without_identity_and_the_card_is_updated(policybot: Policybot) -> None:
    await policybot.post(activity("personal_message", policybot.connector))
    card_id = "fake-activity-1"  # the id the fake connector gave the answer card

    await policybot.post(activity("card_action", policybot.connector, replyToId=card_id))

    update = policybot.connector.calls[-1]
    assert (update.method, update.conversation_id, update.activity_id) == ("PUT", PERSONAL, card_id)
    texts = update.card_texts()
    assert texts[0] == "Adding your manager on social media"
    assert "EN feedback_thanks" in texts
    assert not [d for d in submit_data(update) if d["policybot"] == "feedback"]  # no second vote
    assert await policybot.store.feedback_counts() == {"friend-manager": (1, 0)}


async def test_unhelpful_feedback_in_norwegian(policybot: Policybot) -> None:
    value = {"policybot": "feedback", "entry": "friend-manager", "helpful": False, "lang": "nb"}
    await policybot.post(activity("card_action", policybot.connector, replyToId="card-9", value=value))

    [update] = policybot.connector.calls
    assert "NB feedback_thanks_unhelpful" in update.card_texts()
    assert await policybot.store.feedback_counts() == {"friend-manager": (0, 1)}


async def test_picking_a_suggestion_answers_that_entry(policybot: Policybot) -> None:
    value = {"policybot": "pick", "entry": "workplace-photos", "lang": "nb", "question": "bilder?"}
    await policybot.post(activity("card_action", policybot.connector, value=value))

    [call] = policybot.connector.calls
    assert call.method == "POST"
    assert call.card_texts()[0] == "Bilder og video på jobben"


async def test_ask_hr_forwards_the_question_to_the_hr_conversation(policybot: Policybot) -> None:
    value = {"policybot": "ask_hr", "lang": "nb", "question": "Kan jeg blogge om jobben?"}
    await policybot.post(activity("card_action", policybot.connector, value=value))

    [to_hr] = policybot.connector.calls_to(HR_CONVERSATION)
    assert to_hr.activity_id is None  # a new post in the HR conversation, not a reply
    assert to_hr.text == "EN escalation_to_hr Kan jeg blogge om jobben? Kari Nordmann"
    [to_user] = policybot.connector.calls_to(PERSONAL)
    assert to_user.text == "NB escalation_sent"


async def test_ask_hr_says_so_when_the_hr_conversation_cannot_be_reached(policybot: Policybot) -> None:
    policybot.connector.fail(HR_CONVERSATION, 403)
    value = {"policybot": "ask_hr", "lang": "en", "question": "Can I blog about work?"}
    await policybot.post(activity("card_action", policybot.connector, value=value))

    [to_user] = policybot.connector.calls
    assert to_user.text == "EN escalation_failed"


async def test_an_unknown_button_gets_help_not_an_error(policybot: Policybot) -> None:
    value = {"policybot": "self-destruct", "entry": "nope", "lang": "en"}
    status, _ = await policybot.post(activity("card_action", policybot.connector, value=value))

    assert status == 200
    assert policybot.connector.calls[0].text == "EN help"


# ------------------------------------------------------------------------------ install and proactive


async def test_installing_in_personal_chat_stores_the_reference_and_greets(policybot: Policybot) -> None:
    await policybot.post(activity("install_personal", policybot.connector))

    [stored] = await policybot.store.references("teams")
    assert (stored.conversation_id, stored.lang) == (PERSONAL, "nb")
    assert stored.reference["conversation"]["tenantID"] == "tenant-1"  # kept from channelData.tenant.id
    assert stored.reference["serviceUrl"] == policybot.connector.url
    assert "activityId" not in stored.reference and "user" not in stored.reference
    [greeting] = policybot.connector.calls
    assert greeting.text == "NB greeting"


async def test_installing_in_a_team_stores_it_quietly_and_uninstalling_forgets_it(
    policybot: Policybot,
) -> None:
    await policybot.post(activity("install_team", policybot.connector))

    [stored] = await policybot.store.references("teams")
    assert (stored.conversation_id, stored.lang) == (CHANNEL, "en")  # no locale: the default language
    assert policybot.connector.calls == []

    await policybot.post(activity("uninstall_team", policybot.connector))
    assert await policybot.store.references("teams") == []


async def test_installation_update_add_and_remove_keep_the_reference_in_step(policybot: Policybot) -> None:
    def update(action: str, number: int) -> dict[str, Any]:
        body = activity("install_personal", policybot.connector, type="installationUpdate", action=action)
        body["id"] = f"f:installation-{number}"
        del body["membersAdded"]
        return body

    await policybot.post(update("add", 1))
    assert [r.conversation_id for r in await policybot.store.references("teams")] == [PERSONAL]
    assert policybot.connector.calls == []  # the greeting comes with the conversationUpdate only

    await policybot.post(update("remove", 2))
    assert await policybot.store.references("teams") == []


async def test_a_daily_tip_reaches_the_installed_conversation_as_a_new_post(policybot: Policybot) -> None:
    await policybot.post(activity("install_team", policybot.connector))
    deliverer = teams.deliverer(policybot.app)
    assert deliverer is not None and deliverer.platform == "teams"

    await deliverer.deliver(Target("teams", CHANNEL, "nb"), policybot.conversation.tip("nb", "photo-check"))

    [tip] = policybot.connector.calls
    assert (tip.method, tip.conversation_id, tip.activity_id) == ("POST", CHANNEL, None)
    assert "replyToId" not in tip.activity
    assert tip.activity["conversation"]["tenantID"] == "tenant-1"
    assert tip.card_texts()[:2] == ["NB tip", "Før du legger ut et bilde fra jobben, sjekk bakgrunnen."]


async def test_delivery_failures_say_whether_to_retry(policybot: Policybot) -> None:
    await policybot.post(activity("install_team", policybot.connector))
    deliverer = teams.deliverer(policybot.app)
    assert deliverer is not None
    tip = policybot.conversation.tip("en", "photo-check")

    for status, retryable in ((403, False), (404, False), (429, True), (503, True)):
        policybot.connector.fail(CHANNEL, status)
        with pytest.raises(DeliveryError) as failure:
            await deliverer.deliver(Target("teams", CHANNEL, "en"), tip)
        assert failure.value.retryable is retryable, status

    with pytest.raises(DeliveryError) as never_installed:
        await deliverer.deliver(Target("teams", "19:elsewhere@thread.tacv2", "en"), tip)
    assert never_installed.value.retryable is False


async def test_an_unreachable_connector_is_a_retryable_failure(policybot: Policybot) -> None:
    gone = FakeBotConnector()
    await gone.start()
    await policybot.post(activity("install_team", gone))
    await gone.close()  # Teams' service is down: connection refused
    deliverer = teams.deliverer(policybot.app)
    assert deliverer is not None

    with pytest.raises(DeliveryError) as failure:
        await deliverer.deliver(Target("teams", CHANNEL, "en"), policybot.conversation.tip("en"))
    assert failure.value.retryable is True


# ------------------------------------------------------------------------------------------ bad input


async def test_bad_requests_get_a_clear_4xx_never_a_stack_trace(policybot: Policybot) -> None:
    cases: list[tuple[Any, dict[str, str] | None, int]] = [
        ("{not json", None, 400),
        ('["an", "array"]', None, 400),
        ({"text": "no type"}, None, 400),
        ({"type": "message", "text": "no serviceUrl", "conversation": {"id": "x"}}, None, 400),
        ({"type": "message", "entities": "not a list", "serviceUrl": "http://127.0.0.1:9/"}, None, 400),
        ("type=message", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ]
    for body, headers, expected in cases:
        status, text = await policybot.post(body, headers=headers)
        assert status == expected, body
        assert "error" in json.loads(text) and "Traceback" not in text
    assert policybot.connector.calls == []


async def test_odd_activities_get_a_quiet_200(policybot: Policybot) -> None:
    typing = activity("personal_message", policybot.connector, type="typing", id="t1")
    unknown = activity("personal_message", policybot.connector, type="somethingNew", id="t2")
    for body in (typing, unknown):
        assert (await policybot.post(body)) == (200, "")

    status, text = await policybot.post(activity("invoke", policybot.connector))
    assert (status, text) == (200, "")  # an invoke is acknowledged without a body (no 500 trap)
    assert policybot.connector.calls == []


async def test_empty_text_and_attachments_only_get_the_empty_help(policybot: Policybot) -> None:
    empty = activity("personal_message", policybot.connector, text="   ", id="e1")
    files = activity(
        "personal_message",
        policybot.connector,
        id="e2",
        attachments=[{"contentType": "image/png", "contentUrl": "https://example.com/x.png"}],
    )
    del files["text"]
    for body in (empty, files):
        assert (await policybot.post(body))[0] == 200

    assert [call.card_texts() for call in policybot.connector.calls] == [["EN empty"], ["EN empty"]]


async def test_a_100000_character_message_is_answered_with_a_note(policybot: Policybot) -> None:
    body = activity(
        "personal_message", policybot.connector, text="Can I add my manager on Facebook? " + "x" * 100_000
    )
    status, _ = await policybot.post(body)

    assert status == 200
    [call] = policybot.connector.calls
    assert any("EN long_message" in text for text in call.card_texts())


# ---------------------------------------------------------------------------------- security and setup


async def test_with_an_app_id_an_unauthenticated_request_gets_401_and_causes_nothing(
    tiny_kb_dir: Path,
    tmp_path: Path,
    bot_connector: FakeBotConnector,
) -> None:
    env = {"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "not-a-real-secret"}
    async with start_policybot(env, tiny_kb_dir, tmp_path, bot_connector) as running:
        for body in (
            activity("personal_message", bot_connector),
            activity("install_personal", bot_connector),
        ):
            status, text = await running.post(body)  # no Authorization header at all
            assert status == 401 and "Traceback" not in text
        # A token that is not even a JWT is refused before any key lookup (no network needed).
        status, _ = await running.post(
            activity("personal_message", bot_connector), headers={"Authorization": "Bearer abc.def.ghi"}
        )
        assert status == 401

        assert bot_connector.calls == []
        assert await running.store.references("teams") == []
        async with running.http.get(f"{running.url}/healthz") as health:
            assert "teams" in (await health.json())["platforms"]


async def test_without_an_app_id_outside_development_teams_is_not_mounted_and_the_log_says_why(
    tiny_kb_dir: Path,
    tmp_path: Path,
    bot_connector: FakeBotConnector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.teams")
    async with start_policybot({}, tiny_kb_dir, tmp_path, bot_connector) as running:
        status, _ = await running.post(activity("personal_message", bot_connector))
        assert status in (404, 405)
        async with running.http.get(f"{running.url}/healthz") as health:
            assert "teams" not in (await health.json())["platforms"]
    assert "MicrosoftAppId is not set" in caplog.text
    assert bot_connector.calls == []


async def test_development_mode_lists_teams_in_healthz(policybot: Policybot) -> None:
    async with policybot.http.get(f"{policybot.url}/healthz") as health:
        assert "teams" in (await health.json())["platforms"]
