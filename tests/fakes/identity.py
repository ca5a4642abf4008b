"""A local stand-in for the identity services a Teams bot talks to, over HTTPS on 127.0.0.1.

It plays three parts, each at the paths the real service uses, so the bot is pointed at it by
configuration alone (Bot Framework's setting names, see `env()`):

    GET  /v1/.well-known/openidconfiguration          Bot Framework's OpenID metadata (incoming tokens)
    GET  /v1/.well-known/keys                         its JWKS: an RSA key the fake generates, endorsed
                                                      for msteams
    GET  /{tenant}/v2.0/.well-known/openid-configuration
    POST /{tenant}/oauth2/v2.0/token                  Entra ID: the bot's own token (client credentials)
    GET  /msi/token                                   App Service's managed-identity endpoint
                                                      (IDENTITY_ENDPOINT / IDENTITY_HEADER)

`token(...)` mints the JWT Bot Framework would send with an activity, correctly signed unless told
otherwise; `token_requests` records every request for the bot's own token. MSAL only talks to https
authorities, so the server has a self-signed certificate for 127.0.0.1, trusted by the bot's HTTP client
(`requests`) through REQUESTS_CA_BUNDLE, which the `identity` fixture sets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import itertools
import json
import ssl
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

METADATA_PATH = "/v1/.well-known/openidconfiguration"
_INSTANCES = itertools.count(1)  # each fake's own metadata URL (see `env`)

ISSUER = "https://api.botframework.com"  # Bot Framework's issuer (the public cloud's)
KEY_ID = "fake-bot-framework-key"
IDENTITY_HEADER = "fake-app-service-identity-header"


@dataclass(frozen=True)
class TokenRequest:
    """One request the bot made for its own token."""

    tenant: str  # the tenant in the path (botframework.com for MultiTenant, the bot's own for SingleTenant)
    form: dict[str, str]  # grant_type, client_id, client_secret, scope (MSI: the query: resource, client_id)


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert and key files)."""
    key = _rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "identity-cert.pem", directory / "identity-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class FakeIdentity:
    """Bot Framework's OpenID metadata and keys, and Entra ID's token endpoint, on https://127.0.0.1."""

    def __init__(self, directory: Path, *, app_password: str = "the-app-password") -> None:
        self.cert_file, self._key_file = _certificate(directory)
        self.signing_key = _rsa_key()
        self.app_password = app_password
        self.expires_in = 3600  # seconds, of every token the token endpoints hand out
        self.token_requests: list[TokenRequest] = []
        self.metadata_requests = 0
        self.hanging = False  # True: the OpenID metadata request is accepted and left unanswered
        self._tokens = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self.port = 0
        self.instance = next(_INSTANCES)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The settings that point policybot at this service instead of Microsoft's."""
        return {
            # botbuilder caches the metadata (and the keys it lists) per URL for the whole process: a
            # later fake on a reused port must not be taken for this one, so each has a URL of its own.
            "ToBotFromChannelOpenIdMetadataUrl": f"{self.url}{METADATA_PATH}?fake={self.instance}",
            "ToChannelFromBotLoginUrl": f"{self.url}/botframework.com",
            "ValidateAuthority": "false",  # MSAL's instance discovery would ask login.microsoftonline.com
        }

    def issued(self) -> list[str]:
        """The access tokens handed out so far, in order."""
        return [f"fake-access-token-{n}" for n in range(1, len(self.token_requests) + 1)]

    # -- Tokens Bot Framework sends the bot ----------------------------------------------------------

    def token(
        self,
        app_id: str,
        service_url: str | None,
        *,
        issuer: str = ISSUER,
        expires_in: int = 3600,
        key: rsa.RSAPrivateKey | None = None,
        key_id: str = KEY_ID,
        algorithm: str = "RS256",
    ) -> str:
        """A Bot Framework JWT for `app_id` (the audience), with the `serviceurl` claim if given."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": app_id,
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + expires_in,
        }
        if service_url is not None:
            claims["serviceurl"] = service_url
        headers = {"kid": key_id}
        if algorithm == "none":
            return jwt.encode(claims, None, algorithm="none", headers=headers)
        return jwt.encode(claims, key or self.signing_key, algorithm=algorithm, headers=headers)

    # -- Handlers ------------------------------------------------------------------------------------

    async def _openid_configuration(self, request: web.Request) -> web.Response:
        self.metadata_requests += 1
        while self.hanging:  # noqa: ASYNC110 (set from the test's loop; an Event belongs to one loop)
            await asyncio.sleep(0.05)
        return web.json_response(
            {
                "issuer": ISSUER,
                "authorization_endpoint": "https://invalid.botframework.com",
                "jwks_uri": f"{self.url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        self.metadata_requests += 1
        jwk = json.loads(RSAAlgorithm.to_jwk(self.signing_key.public_key()))
        jwk.update({"kid": KEY_ID, "use": "sig", "endorsements": ["msteams", "emulator"]})
        unendorsed = json.loads(RSAAlgorithm.to_jwk(self.signing_key.public_key()))
        unendorsed.update({"kid": "key-for-another-channel", "use": "sig", "endorsements": ["webchat"]})
        return web.json_response({"keys": [jwk, unendorsed]})

    async def _tenant_configuration(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        base = f"{self.url}/{tenant}"
        return web.json_response(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{base}/v2.0",
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.token_requests.append(TokenRequest(request.match_info["tenant"], form))
        if form.get("grant_type") != "client_credentials" or form.get("client_secret") != self.app_password:
            return web.json_response(
                {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."},
                status=401,
            )
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "access_token": f"fake-access-token-{next(self._tokens)}",
            }
        )

    async def _managed_identity_token(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.token_requests.append(TokenRequest("managed-identity", query))
        if request.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
            return web.json_response({"statusCode": 400, "message": "wrong identity header"}, status=400)
        return web.json_response(
            {
                "access_token": f"fake-access-token-{next(self._tokens)}",
                "expires_on": str(int(time.time()) + self.expires_in),
                "resource": query.get("resource"),
                "token_type": "Bearer",
            }
        )

    # -- Running -------------------------------------------------------------------------------------

    @web.middleware
    async def _no_keep_alive(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every connection closed after its answer, so none is left open when the service stops."""
        response: web.StreamResponse = await handler(request)
        response.force_close()
        return response

    async def _serve(self, port: int) -> None:
        app = web.Application(middlewares=[self._no_keep_alive])
        app.router.add_get(METADATA_PATH, self._openid_configuration)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        app.router.add_get("/msi/token", self._managed_identity_token)
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._tenant_configuration)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.cert_file, self._key_file)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=tls)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # no public accessor

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _run(self, coroutine: Any) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    async def start(self) -> FakeIdentity:
        """Serve (again, on the same port after `stop()`).

        The server runs on its own thread and event loop: botbuilder fetches the OpenID metadata with
        a blocking `requests.get` on the bot's event loop, which would otherwise wait for itself.
        """
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop.run_forever, name="fake-identity", daemon=True)
            self._thread.start()
        self._run(self._serve(self.port))
        return self

    async def stop(self) -> None:
        """Go down (connections refused); `start()` again comes back on the same port."""
        self._run(self._cleanup())

    async def close(self) -> None:
        self.hanging = False
        await self.stop()
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None
        self._loop.close()


@pytest.fixture
async def identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeIdentity]:
    """A running fake identity service whose certificate the bot's `requests` trust; loopback unproxied."""
    fake = FakeIdentity(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.cert_file))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
