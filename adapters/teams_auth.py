"""Teams authentication: which identity endpoints the bot trusts, and where it gets its own token.

Incoming: every request to /api/messages carries a Bot Framework JWT. botbuilder checks it: the signature
against the keys listed in the cloud's OpenID metadata (and that the key is endorsed for the channel),
the issuer, the audience (our app id), the expiry, and that its `serviceurl` claim is the activity's
serviceUrl. Outgoing: every reply and proactive send carries a token the bot gets from Microsoft Entra ID
with its app id and password (client credentials), for the cloud's Bot Framework scope.

Both go through botbuilder's own parameterized authentication (`BotFrameworkAuthenticationFactory.create`
with every endpoint given), filled from its `AuthenticationConstants` / `GovernmentConstants` for the
chosen cloud (POLICYBOT_TEAMS_CLOUD), so the code that runs is the same for every cloud and for the tests'
local identity service; an endpoint set in the environment (Bot Framework's own setting names, see
bot/config.py TeamsSettings) replaces the cloud's value.

What is our own here, and why:
- the outgoing password credentials: botbuilder 4.17 creates a new MicrosoftAppCredentials, with a new
  MSAL application and so an empty token cache, for every connector client, i.e. every reply fetches a
  new token. `_CachingCredentialFactory` keeps one credential per (app, scope, authority), so MSAL's cache
  serves the token until five minutes before it expires, then fetches a fresh one. Its MSAL application
  is also given `validate_authority` (botbuilder's own private-cloud credentials drop it);
- `TokenCheck`: runs the SDK's check off the event loop with a time limit, turns its exceptions into 401
  (a bad token) or 503 (the identity service could not be reached, or did not answer in time), and logs
  an outage once, and its end once, rather than once per request.

Known limits of botbuilder 4.17 here: the OpenID metadata is fetched with a blocking `requests.get`
without a timeout (once a day, or at each request while it fails), so `TokenCheck` runs it off the event
loop with a time limit; and a key id missing from the cached keys is refused at once instead of
refreshing the keys first (so a newly published key is trusted only from the next daily refresh).
And msrest asks the credentials for the bot's own token on the event loop: the one fetch per token
lifetime (about an hour) blocks it for as long as Entra ID takes, at most TOKEN_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

from botbuilder.schema import Activity, CallerIdConstants
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    BotFrameworkAuthenticationFactory,
    GovernmentConstants,
    ManagedIdentityServiceClientCredentialsFactory,
    MicrosoftAppCredentials,
    PasswordServiceClientCredentialFactory,
    ServiceClientCredentialsFactory,
)
from msal import ConfidentialClientApplication
from msrest.authentication import Authentication

from bot.config import Settings, TeamsSettings

log = logging.getLogger(__name__)

TOKEN_TIMEOUT_S = 10  # a token request that hangs fails the send (retryable) instead of blocking it forever
VALIDATION_TIMEOUT_S = 10  # an incoming token not checked by then gets 503 (Teams retries)
VALIDATION_THREADS = 64  # checks at once; each takes a few ms unless the identity service hangs


@dataclass(frozen=True)
class Cloud:
    """One cloud's Bot Framework identity endpoints, as botbuilder's constants give them."""

    login_url_prefix: str  # + tenant = the authority the bot gets its own token from
    default_tenant: str  # a MultiTenant bot's token comes from this tenant
    oauth_scope: str  # the bot's own token is for this audience (the Bot Connector)
    token_issuer: str  # the `iss` of tokens Bot Framework sends the bot
    openid_metadata_url: str  # where the keys that sign those tokens are listed
    emulator_openid_metadata_url: str  # the same, for the Bot Framework Emulator's tokens
    oauth_url: str  # the user-token (sign-in) service; policybot signs no user in
    caller_id: str


_PUBLIC = Cloud(
    login_url_prefix=AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX,
    default_tenant=AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT,
    oauth_scope=AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
    token_issuer=AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
    openid_metadata_url=AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL,
    emulator_openid_metadata_url=AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
    oauth_url=AuthenticationConstants.OAUTH_URL,
    caller_id=CallerIdConstants.public_azure_channel.value,
)
_US_GOVERNMENT = Cloud(
    login_url_prefix=GovernmentConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX,
    default_tenant=GovernmentConstants.DEFAULT_CHANNEL_AUTH_TENANT,
    oauth_scope=GovernmentConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
    token_issuer=GovernmentConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
    openid_metadata_url=GovernmentConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL,
    emulator_openid_metadata_url=GovernmentConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
    oauth_url=GovernmentConstants.OAUTH_URL_GOV,
    caller_id=CallerIdConstants.us_gov_channel.value,
)

# GCC (moderate) Teams bots run on the public Azure Bot Service; GCC High and DoD on Azure Government,
# whose identity endpoints botbuilder knows as one set (GovernmentConstants).
CLOUDS = {"public": _PUBLIC, "gcc-high": _US_GOVERNMENT, "dod": _US_GOVERNMENT}


@dataclass(frozen=True)
class Endpoints:
    """What one bot uses: its cloud's endpoints with the configured overrides applied."""

    openid_metadata_url: str
    token_issuer: str
    authority: str  # the tenant's endpoint for SingleTenant, the cloud's Bot Framework tenant otherwise
    oauth_scope: str
    validate_authority: bool
    cloud: Cloud


def endpoints(teams: TeamsSettings) -> Endpoints:
    cloud = CLOUDS[teams.cloud]
    login_url = (teams.login_url or cloud.login_url_prefix + cloud.default_tenant).rstrip("/")
    authority = login_url
    if teams.app_type == "SingleTenant" and teams.tenant_id:
        authority = login_url.rsplit("/", 1)[0] + "/" + teams.tenant_id  # the tenant replaces the default
    return Endpoints(
        openid_metadata_url=teams.openid_metadata_url or cloud.openid_metadata_url,
        token_issuer=teams.token_issuer or cloud.token_issuer,
        authority=authority,
        oauth_scope=teams.oauth_scope or cloud.oauth_scope,
        validate_authority=teams.validate_authority,
        cloud=cloud,
    )


def make_authentication(settings: Settings) -> BotFrameworkAuthentication:
    """botbuilder's authentication for the configured app and cloud (anonymous without an app id)."""
    teams = settings.teams or TeamsSettings(app_id="", app_password="")
    ends = endpoints(teams)
    factory: ServiceClientCredentialsFactory
    if teams.app_type == "UserAssignedMSI":
        # The managed identity's token comes from the Azure host (IMDS, or App Service's endpoint);
        # botbuilder's credentials for it share one MSAL token cache, so they are used as they are.
        factory = ManagedIdentityServiceClientCredentialsFactory(teams.app_id)
    else:
        factory = _CachingCredentialFactory(teams.app_id, teams.app_password)
    return BotFrameworkAuthenticationFactory.create(
        validate_authority=ends.validate_authority,
        to_channel_from_bot_login_url=ends.authority,
        to_channel_from_bot_oauth_scope=ends.oauth_scope,
        to_bot_from_channel_token_issuer=ends.token_issuer,
        oauth_url=ends.cloud.oauth_url,
        to_bot_from_channel_open_id_metadata_url=ends.openid_metadata_url,
        to_bot_from_emulator_open_id_metadata_url=ends.cloud.emulator_openid_metadata_url,
        caller_id=ends.cloud.caller_id,
        credential_factory=factory,
    )


# ------------------------------------------------------------------------------------------------------
# The bot's own token


class _CachedCredentials(MicrosoftAppCredentials):  # type: ignore[misc]  # botframework is untyped
    """App id + password credentials that keep one MSAL application, and so its token cache."""

    def __init__(self, app_id: str, password: str, authority: str, scope: str, validate_authority: bool):
        super().__init__(app_id, password, oauth_scope=scope)
        self.oauth_endpoint = authority
        self._validate_authority = validate_authority
        self._lock = threading.Lock()  # concurrent sends wait for one token request, not one each
        self._msal: ConfidentialClientApplication | None = None

    def get_access_token(self, force_refresh: bool = False) -> str:
        scope = self.oauth_scope if self.oauth_scope.endswith("/.default") else self.oauth_scope + "/.default"
        with self._lock:
            if self._msal is None:  # created on first use: its tenant discovery is a network call
                self._msal = ConfidentialClientApplication(
                    self.microsoft_app_id,
                    client_credential=self.microsoft_app_password,
                    authority=self.oauth_endpoint,
                    validate_authority=self._validate_authority,
                    timeout=TOKEN_TIMEOUT_S,
                )
            result: dict[str, Any] = self._msal.acquire_token_for_client(scopes=[scope])  # cache first
        if "access_token" in result:
            return str(result["access_token"])
        raise PermissionError(
            f"no Bot Framework token from {self.oauth_endpoint}: {result.get('error')}: "
            f"{result.get('error_description')}"
        )


class _CachingCredentialFactory(PasswordServiceClientCredentialFactory):  # type: ignore[misc]  # untyped base
    """botbuilder's password credential factory, handing out one credential per (app, scope, authority)."""

    def __init__(self, app_id: str, password: str) -> None:
        super().__init__(app_id, password)
        self._credentials: dict[tuple[str, str, str], _CachedCredentials] = {}

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Authentication:
        if await self.is_authentication_disabled():
            empty: Authentication = MicrosoftAppCredentials.empty()
            return empty
        if not await self.is_valid_app_id(app_id):
            raise PermissionError("a token was asked for another app id than MicrosoftAppId")
        key = (app_id, oauth_scope, login_endpoint)
        if key not in self._credentials:
            self._credentials[key] = _CachedCredentials(
                app_id, self.password, login_endpoint, oauth_scope, validate_authority
            )
        return self._credentials[key]


# ------------------------------------------------------------------------------------------------------
# Checking an incoming request's token


@dataclass(frozen=True)
class Refusal:
    """The answer to give instead of processing the activity."""

    status: int
    message: str


class TokenCheck:
    """Checks the Bot Framework token of a request; fails closed; logs an identity-service outage once.

    botbuilder fetches the signing keys with a blocking `requests.get` that has no timeout, so each check
    runs on a daemon thread of its own, in a fresh event loop, and is given up after VALIDATION_TIMEOUT_S:
    an identity service that hangs costs Teams a 503, the server (Slack, /healthz, Teams requests whose
    keys are cached) keeps answering meanwhile, and a stuck thread never holds up the process's exit.
    At most VALIDATION_THREADS checks run at once; past that, requests get 503 at once.
    """

    def __init__(self, authentication: BotFrameworkAuthentication) -> None:
        self._authentication = authentication
        self._outage = False
        self._slots = threading.BoundedSemaphore(VALIDATION_THREADS)

    def _start(
        self, activity: Activity, auth_header: str | None
    ) -> asyncio.Future[AuthenticateRequestResult]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AuthenticateRequestResult] = loop.create_future()

        def settle(outcome: Any, failed: bool) -> None:
            if future.done():  # given up on meanwhile (timed out)
                return
            if failed:
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        def work() -> None:
            outcome: Any
            failed = False
            try:
                outcome = asyncio.run(self._authentication.authenticate_request(activity, auth_header))
            except Exception as exc:  # handed to the waiting request
                outcome, failed = exc, True
            finally:
                self._slots.release()
            with contextlib.suppress(RuntimeError):  # the loop closed while this hung: nobody waits
                loop.call_soon_threadsafe(settle, outcome, failed)

        threading.Thread(target=work, name="teams-token-check", daemon=True).start()
        return future

    async def check(self, activity: Activity, auth_header: str | None) -> AuthenticateRequestResult | Refusal:
        if not self._slots.acquire(blocking=False):  # that many checks hang on the identity service
            return self._unavailable("all token checks are waiting for it")
        try:
            result = await asyncio.wait_for(self._start(activity, auth_header), VALIDATION_TIMEOUT_S)
        # PermissionError and TimeoutError are OSErrors too, so they come first.
        except PermissionError as exc:  # the SDK's "not authorized": no token, wrong audience, issuer…
            log.info("Teams request refused (401): %s", exc)
            return Refusal(401, "unauthorized")
        except TimeoutError:
            return self._unavailable(f"no answer in {VALIDATION_TIMEOUT_S} s")
        except OSError as exc:  # the keys could not be fetched (requests' errors)
            return self._unavailable(type(exc).__name__)
        except Exception as exc:  # a token the JWT library rejects: signature, expiry, key, algorithm
            log.info("Teams request with an invalid token (401): %s: %s", type(exc).__name__, exc)
            return Refusal(401, "unauthorized")
        if self._outage:  # only a token accepted proves the keys could be fetched again
            self._outage = False
            log.warning("the identity service is reachable again: Teams requests are checked as usual")
        return result

    def _unavailable(self, why: str) -> Refusal:
        if not self._outage:
            self._outage = True
            log.warning(
                "Teams requests are refused (503): the identity service that lists Bot Framework's "
                "signing keys cannot be reached: %s",
                why,
            )
        return Refusal(503, "token validation is unavailable; try again")


__all__ = ["CLOUDS", "Refusal", "TokenCheck", "endpoints", "make_authentication"]
