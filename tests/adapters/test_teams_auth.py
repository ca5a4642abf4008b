"""Teams with authentication on, end to end: activities carry Bot Framework tokens minted by a local fake
identity service (tests/fakes/identity.py), which the bot is pointed at by its settings alone; replies go
to the fake Bot Connector and carry the bot's own token, fetched from the fake's token endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from botframework.connector.auth import AuthenticationConstants, GovernmentConstants
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters import teams
from adapters.teams_auth import VALIDATION_TIMEOUT_S, endpoints
from bot.config import Settings
from bot.errors import ConfigError, DeliveryError
from bot.tips import Target
from tests.adapters.teams_auth_harness import APP_ID, PASSWORD, Launch, auth
from tests.adapters.teams_harness import CHANNEL, PERSONAL, Policybot, activity
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.identity import IDENTITY_HEADER, FakeIdentity

TENANT = "11111111-2222-4333-8444-555555555555"
PUBLIC_SCOPE = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE + "/.default"


@pytest.fixture
async def bot(launch: Launch) -> AsyncIterator[Policybot]:
    """policybot with an app id and password (MultiTenant, the public cloud)."""
    async with launch() as policybot:
        yield policybot


async def ask(bot: Policybot, fake: FakeIdentity, n: int = 1, **token: Any) -> tuple[int, str]:
    """Kari asks in her personal chat, with a Bot Framework token for the bot (changed by `token`)."""
    body = activity("personal_message", bot.connector, id=f"1700000000{n:03d}")
    issued = fake.token(APP_ID, bot.connector.url, **token)
    return await bot.post(body, headers={"Authorization": f"Bearer {issued}"})


async def tip_to_a_team(bot: Policybot, fake: FakeIdentity) -> None:
    """The bot is added to a team (an authenticated install), then posts the daily tip there."""
    status, _ = await bot.post(activity("install_team", bot.connector), headers=auth(bot, fake))
    assert status == 200
    deliverer = teams.deliverer(bot.app)
    assert deliverer is not None
    await deliverer.deliver(Target("teams", CHANNEL, "en"), bot.conversation.tip("en", "photo-check"))


# ------------------------------------------------------------------------------------------- incoming


async def test_a_correctly_signed_token_is_accepted_and_the_answer_carries_the_bots_own_token(
    bot: Policybot,
    identity: FakeIdentity,
) -> None:
    status, _ = await ask(bot, identity)

    assert status == 200
    [answer] = bot.connector.calls
    assert answer.conversation_id == PERSONAL
    assert answer.card_texts()[0] == "Adding your manager on social media"
    assert answer.authorization == "Bearer fake-access-token-1"
    [request] = identity.token_requests
    assert request.tenant == AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT  # MultiTenant
    assert request.form["grant_type"] == "client_credentials"
    assert (request.form["client_id"], request.form["client_secret"]) == (APP_ID, PASSWORD)
    assert request.form["scope"] == PUBLIC_SCOPE


OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

# Each bad token, and the reason botbuilder gives in the log for refusing it.
BAD_TOKENS: dict[str, tuple[dict[str, Any], str]] = {
    "forged signature": ({"key": OTHER_KEY}, "InvalidSignatureError"),
    "expired": ({"expires_in": -10 * 60}, "ExpiredSignatureError"),  # five minutes of clock skew allowed
    "wrong audience": ({"app_id": "99999999-0000-4000-8000-000000000999"}, "Invalid AppId passed on token"),
    "wrong issuer": ({"issuer": "https://sts.example.com/"}, "Identity missing"),
    "unknown key id": ({"key_id": "a-key-nobody-published"}, "IndexError"),
    "alg none": ({"algorithm": "none"}, "Token signing algorithm not in allowed list"),
    "missing serviceUrl claim": ({"service_url": None}, "'serviceurl' claim missing"),
    "another service's serviceUrl": (
        {"service_url": "https://smba.trafficmanager.net/emea/"},
        "Invalid 'serviceurl' claim",
    ),
    "key not endorsed for msteams": ({"key_id": "key-for-another-channel"}, "Could not validate endorsement"),
}


@pytest.mark.parametrize("case", BAD_TOKENS)
async def test_a_bad_token_gets_401_and_nothing_is_sent(
    case: str,
    bot: Policybot,
    identity: FakeIdentity,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.teams_auth")
    changes, reason = dict(BAD_TOKENS[case][0]), BAD_TOKENS[case][1]
    app_id = changes.pop("app_id", APP_ID)
    service_url = changes.pop("service_url", bot.connector.url)
    token = identity.token(app_id, service_url, **changes)
    for body in (activity("personal_message", bot.connector), activity("install_personal", bot.connector)):
        status, text = await bot.post(body, headers={"Authorization": f"Bearer {token}"})
        assert (status, "Traceback" in text) == (401, False), case

    assert reason in caplog.text  # refused for that reason, not another
    assert token not in caplog.text
    assert bot.connector.calls == []
    assert await bot.store.references("teams") == []  # the install was not believed either
    assert identity.token_requests == []  # the bot did not even get itself a token


async def test_no_token_or_another_scheme_gets_401(
    bot: Policybot,
    identity: FakeIdentity,
) -> None:
    token = identity.token(APP_ID, bot.connector.url)
    for headers in ({}, {"Authorization": ""}, {"Authorization": f"Basic {token}"}, {"Authorization": token}):
        status, _ = await bot.post(activity("personal_message", bot.connector), headers=headers)
        assert status == 401, headers
    assert bot.connector.calls == []


async def test_with_the_identity_service_down_requests_fail_closed_and_the_outage_is_logged_once(
    launch: Launch,
    identity: FakeIdentity,
    bot_connector: FakeBotConnector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.teams_auth")
    await identity.stop()  # connections refused from the start: no keys were ever fetched
    async with launch() as bot:
        for n in range(3):
            status, text = await ask(bot, identity, n)
            assert (status, "Traceback" in text) == (503, False)
        assert bot_connector.calls == []
        down = [r for r in caplog.records if "cannot be reached" in r.getMessage()]
        assert len(down) == 1 and down[0].levelno == logging.WARNING

        await identity.start()  # back, on the same port
        status, _ = await ask(bot, identity, 4)
        assert status == 200
        status, _ = await ask(bot, identity, 5)
        assert status == 200

    assert len(bot_connector.calls) == 2
    assert len([r for r in caplog.records if "cannot be reached" in r.getMessage()]) == 1
    assert len([r for r in caplog.records if "reachable again" in r.getMessage()]) == 1


async def test_an_identity_service_that_hangs_costs_a_503_and_the_server_keeps_answering(
    bot: Policybot,
    identity: FakeIdentity,
    caplog: pytest.LogCaptureFixture,
) -> None:
    identity.hanging = True  # botbuilder's key fetch has no timeout of its own
    pending = asyncio.create_task(ask(bot, identity, 1))
    await asyncio.sleep(0.5)
    async with bot.http.get(f"{bot.url}/healthz") as health:
        assert health.status == 200
    assert not pending.done()  # /healthz was answered while the token check waited

    status, _ = await pending
    assert status == 503  # after VALIDATION_TIMEOUT_S
    assert f"no answer in {VALIDATION_TIMEOUT_S} s" in caplog.text
    identity.hanging = False
    assert (await ask(bot, identity, 2))[0] == 200
    assert len(bot.connector.calls) == 1
    # The check given up on finishes on its own thread once the keys come: nothing of it outlives the test.
    async with asyncio.timeout(10):
        while any(thread.name == "teams-token-check" for thread in threading.enumerate()):  # noqa: ASYNC110 (a thread, not a task: no Event to wait on)
            await asyncio.sleep(0.05)


# ------------------------------------------------------------------------------------------- outgoing


async def test_a_hundred_replies_and_a_tip_make_one_token_request(
    bot: Policybot,
    identity: FakeIdentity,
) -> None:
    for n in range(100):
        status, _ = await ask(bot, identity, n)
        assert status == 200
    await tip_to_a_team(bot, identity)

    assert len(bot.connector.calls) == 101
    assert {call.authorization for call in bot.connector.calls} == {"Bearer fake-access-token-1"}
    assert len(identity.token_requests) == 1  # the figure the issue asks for: 1 per 100 replies


async def test_concurrent_replies_wait_for_one_token_request(
    bot: Policybot,
    identity: FakeIdentity,
) -> None:
    statuses = await asyncio.gather(*(ask(bot, identity, n) for n in range(20)))

    assert [status for status, _ in statuses] == [200] * 20
    assert len(identity.token_requests) == 1
    assert {call.authorization for call in bot.connector.calls} == {"Bearer fake-access-token-1"}


async def test_the_bots_token_is_fetched_again_once_it_has_expired(
    bot: Policybot,
    identity: FakeIdentity,
) -> None:
    # MSAL treats a token as expired five minutes early: this one is good for about 3 seconds.
    identity.expires_in = 5 * 60 + 3
    await ask(bot, identity, 1)
    await ask(bot, identity, 2)
    assert len(identity.token_requests) == 1  # still fresh: served from the cache

    await asyncio.sleep(3.5)
    await ask(bot, identity, 3)

    assert len(identity.token_requests) == 2
    assert [call.authorization for call in bot.connector.calls] == [
        "Bearer fake-access-token-1",
        "Bearer fake-access-token-1",
        "Bearer fake-access-token-2",
    ]


async def test_a_single_tenant_bot_gets_its_token_from_its_own_tenant(
    launch: Launch,
    identity: FakeIdentity,
    bot_connector: FakeBotConnector,
) -> None:
    async with launch(MicrosoftAppType="SingleTenant", MicrosoftAppTenantId=TENANT) as bot:
        assert (await ask(bot, identity))[0] == 200
        await tip_to_a_team(bot, identity)

    assert [call.authorization for call in bot_connector.calls] == ["Bearer fake-access-token-1"] * 2
    [request] = identity.token_requests
    assert request.tenant == TENANT
    assert (request.form["client_id"], request.form["scope"]) == (APP_ID, PUBLIC_SCOPE)


async def test_a_wrong_password_sends_nothing_and_the_log_says_why_without_the_secret(
    launch: Launch,
    identity: FakeIdentity,
    bot_connector: FakeBotConnector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with launch(MicrosoftAppPassword="an-old-secret") as bot:
        status, _ = await ask(bot, identity)
        with pytest.raises(DeliveryError) as failure:
            await tip_to_a_team(bot, identity)

    assert status == 200  # the token was good; only the answer could not be sent
    assert bot_connector.calls == []
    assert "invalid_client" in str(failure.value)
    assert "invalid_client" in caplog.text
    assert "an-old-secret" not in caplog.text and "an-old-secret" not in str(failure.value)


async def test_a_managed_identity_bot_gets_its_token_from_the_azure_host(
    launch: Launch,
    identity: FakeIdentity,
    bot_connector: FakeBotConnector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What Azure App Service sets for an app with a managed identity; MSAL reads it (no IMDS here).
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{identity.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    msi = {
        "MicrosoftAppType": "UserAssignedMSI",
        "MicrosoftAppTenantId": TENANT,
        "MicrosoftAppPassword": None,
    }
    async with launch(**msi) as bot:
        assert (await ask(bot, identity, 1))[0] == 200
        assert (await ask(bot, identity, 2))[0] == 200

    assert [call.authorization for call in bot_connector.calls] == ["Bearer fake-access-token-1"] * 2
    [request] = identity.token_requests
    assert request.tenant == "managed-identity"
    assert request.form["client_id"] == APP_ID
    assert request.form["resource"] == AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE


# ---------------------------------------------------------------------------------------------- clouds


async def test_a_gcc_high_bot_trusts_government_tokens_only_and_asks_for_the_government_scope(
    launch: Launch,
    identity: FakeIdentity,
    bot_connector: FakeBotConnector,
) -> None:
    # Only where the keys and the bot's token come from are local; issuer and scope are the cloud's.
    login = f"{identity.url}/{GovernmentConstants.DEFAULT_CHANNEL_AUTH_TENANT}"
    async with launch(POLICYBOT_TEAMS_CLOUD="gcc-high", ToChannelFromBotLoginUrl=login) as bot:
        public = await ask(bot, identity, 1)
        government = await ask(bot, identity, 2, issuer=GovernmentConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER)

    assert (public[0], government[0]) == (401, 200)
    [answer] = bot_connector.calls
    assert answer.authorization == "Bearer fake-access-token-1"
    [request] = identity.token_requests
    assert request.tenant == GovernmentConstants.DEFAULT_CHANNEL_AUTH_TENANT
    assert request.form["scope"] == GovernmentConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE + "/.default"


def teams_settings(**env: str) -> Any:
    settings = Settings.from_env({"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": PASSWORD, **env})
    assert settings.teams is not None
    return settings.teams


def test_each_cloud_uses_bot_frameworks_documented_endpoints() -> None:
    public = endpoints(teams_settings())
    assert public.openid_metadata_url == "https://login.botframework.com/v1/.well-known/openidconfiguration"
    assert public.token_issuer == "https://api.botframework.com"
    assert public.authority == "https://login.microsoftonline.com/botframework.com"
    assert public.oauth_scope == "https://api.botframework.com"
    assert public.validate_authority is True

    for cloud in ("gcc-high", "dod"):
        gov = endpoints(teams_settings(POLICYBOT_TEAMS_CLOUD=cloud))
        assert (
            gov.openid_metadata_url
            == "https://login.botframework.azure.us/v1/.well-known/openidconfiguration"
        )
        assert gov.token_issuer == "https://api.botframework.us"
        assert gov.authority == "https://login.microsoftonline.us/MicrosoftServices.onmicrosoft.us"
        assert gov.oauth_scope == "https://api.botframework.us"
    # Microsoft's instructions set ChannelService for US Government: accepted beside the cloud.
    both = teams_settings(POLICYBOT_TEAMS_CLOUD="gcc-high", ChannelService="https://botframework.azure.us")
    assert both.cloud == "gcc-high"


def test_a_single_tenant_bot_gets_its_token_from_its_tenant_in_its_cloud() -> None:
    single = {"MicrosoftAppType": "SingleTenant", "MicrosoftAppTenantId": TENANT}
    assert endpoints(teams_settings(**single)).authority == f"https://login.microsoftonline.com/{TENANT}"
    gov = endpoints(teams_settings(POLICYBOT_TEAMS_CLOUD="gcc-high", **single))
    assert gov.authority == f"https://login.microsoftonline.us/{TENANT}"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"POLICYBOT_TEAMS_CLOUD": "china"},
            "POLICYBOT_TEAMS_CLOUD='china' must be one of public, gcc-high, dod",
        ),
        ({"ChannelService": "https://botframework.azure.us"}, "set POLICYBOT_TEAMS_CLOUD"),
        ({"ValidateAuthority": "maybe"}, "ValidateAuthority='maybe' must be true or false"),
        ({"MicrosoftAppType": "SingleTenant"}, "MicrosoftAppType=SingleTenant needs MicrosoftAppTenantId"),
    ],
)
def test_a_wrong_cloud_setting_is_a_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": PASSWORD, **env})
    assert message in str(error.value)
