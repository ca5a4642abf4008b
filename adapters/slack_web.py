"""Talking to the Slack Web API: the client, how its failures are told apart, sending, the daily tip.

`web_client` makes the Web API client (429s and dropped connections retried); `SlackSender` is how
adapters/slack_platform.py's `SlackPlatform` sends (Web API calls, interaction response_urls, the
ephemeral fallback);
`SlackDeliverer` posts the daily tip. Failures are logged by their Slack error code only, never the token.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack_blocks import Rendered, render
from bot.config import SlackSettings
from bot.conversation import Reply
from bot.errors import DeliveryError
from bot.tips import Target

log = logging.getLogger(__name__)

RETRIES = 3  # per Web API call, for 429 (after Retry-After) and dropped connections
SDK_LOG = "slack_sdk.web.async_client"  # the logger slack_sdk would use itself


def pinned_logger(name: str) -> logging.Logger:
    """A logger with its level set to the one in force now (not NOTSET).

    slack_sdk and bolt test `logger.level <= DEBUG` (not the effective level) before formatting a debug
    line on every request and middleware; a logger left at NOTSET (0) passes that test, so each Web
    API call and each event would format debug text that is then dropped. `--verbose` (DEBUG) still
    shows them: the level is the one the CLI configured.
    """
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET:
        logger.setLevel(logger.getEffectiveLevel())
    return logger


def web_client(slack: SlackSettings, *, retries: int = RETRIES) -> AsyncWebClient:
    """The Web API client: 429s wait their Retry-After and retry, dropped connections retry."""
    handlers: list[AsyncRetryHandler] = [
        AsyncRateLimitErrorRetryHandler(max_retry_count=retries),
        AsyncConnectionErrorRetryHandler(max_retry_count=retries),
    ]
    kwargs: dict[str, Any] = {
        "token": slack.bot_token, "retry_handlers": handlers, "timeout": 15, "logger": pinned_logger(SDK_LOG)
    }  # fmt: skip
    if slack.api_url:
        kwargs["base_url"] = slack.api_url if slack.api_url.endswith("/") else slack.api_url + "/"
    return AsyncWebClient(**kwargs)


def failure(exc: Exception) -> tuple[str, bool]:
    """What went wrong (never with a token in it) and whether trying again later can help."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        error = str(exc.response.get("error") or f"HTTP {status}")
        transient = error in (
            "ratelimited",
            "internal_error",
            "fatal_error",
            "service_unavailable",
            "request_timeout",
        )
        return error, status == 429 or status >= 500 or transient
    return type(exc).__name__, True  # connection refused/reset, timeout


CALL_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError)


class SlackSender:
    """How Slack messages are sent: a Web API call, a reply to an interaction's response_url, an ephemeral.

    A base class of `adapters.slack_platform.SlackPlatform`, which sets `client` and `hr_channel`
    (whether answers get an "Ask HR" button).
    """

    client: AsyncWebClient
    hr_channel: str | None

    async def call(self, method: str, **kwargs: Any) -> dict[str, Any] | None:
        """One Web API call (JSON body); failures are logged (error code only) and give None.

        `api_call` directly: our blocks are plain dicts already, so the per-method wrappers' conversion
        of Block Kit objects is skipped (measured: ~4% of an answered event's CPU); the retry handlers
        and error checks are the same.
        """
        body = {key: value for key, value in kwargs.items() if value is not None}
        try:
            response = await self.client.api_call(method, json=body)
        except CALL_ERRORS as exc:
            log.error("Slack %s failed: %s", method, failure(exc)[0])
            return None
        return response.data if isinstance(response.data, dict) else {}

    async def _respond(self, response_url: str | None, message: dict[str, Any]) -> bool:
        """Post to an interaction's response_url (ephemeral replies, replacing the original)."""
        if not response_url:
            return False
        client = AsyncWebhookClient(
            response_url,
            timeout=15,
            session=self.client.session,
            retry_handlers=[
                AsyncRateLimitErrorRetryHandler(max_retry_count=RETRIES),
                AsyncConnectionErrorRetryHandler(max_retry_count=RETRIES),
            ],
        )
        try:
            result = await client.send_dict(message)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error("Slack response_url failed: %s", type(exc).__name__)
            return False
        if result.status_code != 200:
            log.error("Slack response_url failed: HTTP %s %s", result.status_code, result.body[:100])
            return False
        return True

    async def _post(self, channel: str, reply: Reply, thread_ts: str | None = None) -> None:
        message = render(reply, ask_hr=self.hr_channel is not None)
        kwargs: dict[str, Any] = {"channel": channel, "text": message.text, "blocks": message.blocks}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        await self.call("chat.postMessage", unfurl_links=False, **kwargs)

    async def _ephemeral(self, payload: dict[str, Any], reply: Reply, *, replace: bool = False) -> None:
        """A private reply to whoever sent a slash command or pressed a button."""
        message = render(reply, ask_hr=self.hr_channel is not None)
        await self._ephemeral_message(payload, message, replace=replace)

    async def _ephemeral_message(self, payload: dict[str, Any], message: Rendered, *, replace: bool) -> None:
        body: dict[str, Any] = {
            "response_type": "ephemeral",
            "text": message.text,
            "blocks": message.blocks,
            "replace_original": replace,
        }
        if await self._respond(payload.get("response_url"), body):
            return
        await self._post_ephemeral(payload, message)

    async def _post_ephemeral(self, payload: dict[str, Any], message: Rendered) -> None:
        """`chat.postEphemeral` to whoever sent `payload`, where they clicked: when the response_url failed.

        Never after a second try of the response_url: a timeout there may have been delivered, and the
        user would read the answer twice.
        """
        channel = payload.get("channel_id") or (payload.get("channel") or {}).get("id")
        user = payload.get("user_id") or (payload.get("user") or {}).get("id")
        if channel and user:
            await self.call(
                "chat.postEphemeral",
                channel=channel,
                user=user,
                text=message.text,
                blocks=message.blocks,
                thread_ts=self._thread_of(payload),
            )

    @staticmethod
    def _thread_of(payload: dict[str, Any]) -> str | None:
        """The thread a clicked message is in (None for a slash command or a message in the channel).

        A reply has `thread_ts` (its parent's ts); a parent with replies has `thread_ts` equal to its own
        ts and is shown in the channel, where its private answer goes too.
        """
        original = payload.get("message") or {}
        container = payload.get("container") or {}
        thread = original.get("thread_ts") or container.get("thread_ts")
        own_ts = original.get("ts") or container.get("message_ts")
        return str(thread) if thread and thread != own_ts else None


class SlackDeliverer:
    """Posts a daily tip to a Slack channel (the `bot.tips.Deliverer` for Slack).

    Raises DeliveryError only when Slack certainly did not post it: Slack answered with an error, or
    the connection could not be made. A timeout after sending is ambiguous; it is logged and counted as
    delivered, because a tip posted twice is worse than one that may be missing.
    """

    platform = "slack"

    def __init__(self, client: AsyncWebClient, *, ask_hr: bool = False) -> None:
        self.client = client
        self.ask_hr = ask_hr

    async def deliver(self, target: Target, reply: Reply) -> None:
        message = render(reply, ask_hr=self.ask_hr)
        try:
            await self.client.chat_postMessage(
                channel=target.id, text=message.text, blocks=message.blocks, unfurl_links=False
            )
        except SlackApiError as exc:
            error, retryable = failure(exc)
            retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            raise DeliveryError(
                f"Slack refused the tip for channel {target.id}: {error}",
                retryable=retryable,
                retry_after=float(retry_after) if retry_after and str(retry_after).isdigit() else None,
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise DeliveryError(
                f"could not reach Slack to post the tip for channel {target.id}: {type(exc).__name__}",
                retryable=True,
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "Slack did not confirm the tip for channel %s (%s); it may have been posted",
                target.id, type(exc).__name__,
            )  # fmt: skip
