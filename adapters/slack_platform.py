"""The Slack side of the port (bot/platform.py): how the router's sends become Web API calls.

`SlackPlatform` renders replies as Block Kit (adapters/slack_blocks.py) and sends them the way each
origin calls for: an answer to a message goes into its conversation (or thread), one to a slash
command or a button privately, through the interaction's response_url. adapters/slack.py turns Slack's
requests into the router's events; this module only sends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack_blocks import (
    PICK,
    Rendered,
    chunks,
    escape,
    markdown_message,
    neutralise,
    render,
    section,
    thanked,
    to_mrkdwn,
)
from adapters.slack_web import SlackSender, failure
from bot.conversation import Conversation, Reply
from bot.platform import INSERT_1, INSERT_2, HrPost, Notice, Posted

log = logging.getLogger(__name__)

PLATFORM = "slack"


@dataclass(frozen=True)
class SlackOrigin:
    """Where a Slack event came from, as the replies to it need to know.

    `payload` is the slash command's or the interaction's body (for its response_url and who clicked);
    for a message event it is empty and `channel`/`thread` say where the answer goes.
    """

    kind: str  # "message", "command" or "action"
    channel: str = ""
    thread: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    action_id: str = ""
    user: str = ""

    @property
    def private(self) -> bool:
        return self.kind != "message"


class SlackPlatform(SlackSender):
    """The router's sends, on the Slack Web API."""

    def __init__(
        self, client: AsyncWebClient, conversation: Conversation, hr_channel: str | None, default_lang: str
    ) -> None:
        self.client = client
        self.default_lang = default_lang  # HR's language
        self.conversation = conversation
        self.hr_channel = hr_channel

    @property
    def name(self) -> str:
        return PLATFORM

    @property
    def has_hr(self) -> bool:
        return self.hr_channel is not None

    async def reply(self, origin: SlackOrigin, reply: Reply) -> None:
        if origin.kind == "message":
            await self._post(origin.channel, reply, origin.thread)
        elif origin.kind == "command":
            await self._ephemeral(origin.payload, reply)
        else:
            await self._answer_click(origin, reply)

    async def reply_text(self, origin: SlackOrigin, text: str) -> None:
        message = markdown_message(text)
        if origin.private:
            await self._ephemeral_message(origin.payload, message, replace=False)
        else:
            await self.call(
                "chat.postMessage", channel=origin.channel, thread_ts=origin.thread, text=message.text,
                blocks=message.blocks,
            )  # fmt: skip

    async def update_card(self, origin: SlackOrigin, answer: Reply, thanks: str) -> None:
        body = origin.payload
        original = body.get("message")
        container = body.get("container") or {}
        if original and not container.get("is_ephemeral"):
            blocks = thanked(list(original.get("blocks") or []), thanks)
            channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
            await self.call(
                "chat.update", channel=channel, ts=original.get("ts"), text=original.get("text") or thanks,
                blocks=blocks,
            )  # fmt: skip
        else:
            # Slack does not send an ephemeral message's content back; re-render the answer to thank in place.
            message = render(answer, ask_hr=self.has_hr)
            await self._ephemeral_message(
                body, Rendered(message.text, thanked(message.blocks, thanks)), replace=True
            )

    async def button_not_understood(self, origin: SlackOrigin, lang: str) -> None:
        """Nothing: the message the button was under stays as it is."""
        log.info("ignoring a Slack button whose entry is gone or whose value is unreadable")

    async def post_to_hr(self, origin: SlackOrigin, question: str) -> HrPost | None:
        """The question to the HR channel, mentioning the asker (they pressed the button, so that is wanted).

        Their words go in after the markdown conversion, escaped and inert: a `[title](url)` they typed
        must not become a link posted in the bot's name.
        """
        if self.hr_channel is None:
            return None
        template = self.conversation.say(
            "escalation_to_hr", self.default_lang, question=INSERT_2, user=INSERT_1
        )
        text = (
            to_mrkdwn(template)
            .replace(INSERT_1, f"<@{origin.user}>")
            .replace(INSERT_2, neutralise(escape(question)))
        )
        posted = await self.call(
            "chat.postMessage", channel=self.hr_channel, text=text, blocks=[section(c) for c in chunks(text)]
        )
        if posted is None:
            return None
        ts = posted.get("ts")
        thread = f"{posted.get('channel') or self.hr_channel}:{ts}" if ts else None
        return HrPost(thread, {"user": origin.user})  # how to reach the asker; never the question

    async def message_privately(self, route: dict[str, Any], notice: Notice) -> bool:
        """A DM to the user of `route`; the inserts are Slack mrkdwn already (HR wrote them in Slack)."""
        text = to_mrkdwn(notice.text)
        for marker, words in notice.inserts:
            text = text.replace(marker, words)
        user = str(route.get("user") or "")
        sent = await self.call(
            "chat.postMessage", channel=user, text=text, blocks=[section(c) for c in chunks(text)]
        )
        return sent is not None

    async def tell_hr(self, text: Callable[[str], str]) -> None:
        if not self.hr_channel:
            return
        message = markdown_message(text(self.default_lang))
        await self.call("chat.postMessage", channel=self.hr_channel, text=message.text, blocks=message.blocks)

    def reference(self, origin: SlackOrigin) -> dict[str, Any] | None:
        """A message's conversation and thread; a command's or click's private reply is not kept."""
        if origin.kind != "message":
            return None
        return {"channel": origin.channel, "thread": origin.thread}

    async def post_later(self, reference: dict[str, Any], reply: Reply) -> Posted:
        """The answer, posted where `reference` says; a timeout or a dropped connection is UNKNOWN."""
        message = render(reply, ask_hr=self.has_hr)
        body = {"channel": reference.get("channel"), "text": message.text, "blocks": message.blocks}
        if reference.get("thread"):
            body["thread_ts"] = reference["thread"]
        try:
            await self.client.api_call("chat.postMessage", json={**body, "unfurl_links": False})
        except SlackApiError as exc:
            error, transient = failure(exc)
            log.error("Slack chat.postMessage of an answer left pending failed: %s", error)
            return Posted.TRY_LATER if transient else Posted.REFUSED
        except aiohttp.ClientConnectorError:
            return Posted.TRY_LATER  # nothing reached Slack
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error(
                "Slack did not confirm an answer left pending (%s); not posted again", type(exc).__name__
            )
            return Posted.UNKNOWN
        return Posted.POSTED

    async def _answer_click(self, origin: SlackOrigin, reply: Reply) -> None:
        """A suggestion or related entry clicked: where its answer goes depends on where the button was.

        "Did you mean" is resolved: the answer takes the prompt's place (public or private). A related
        button under a message in a channel (a daily tip, an answer in a thread) answers only whoever
        clicked; in their DM with the bot, a new message is right.
        """
        body = origin.payload
        container = body.get("container") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id"))
        replace = bool(PICK.match(origin.action_id))
        ephemeral = (
            bool(container.get("is_ephemeral"))
            or not body.get("message")
            or (not replace and not channel.startswith("D"))
        )
        if ephemeral or replace:
            message = render(reply, ask_hr=self.has_hr)
            body_out: dict[str, Any] = {
                "text": message.text,
                "blocks": message.blocks,
                "replace_original": replace,
            }
            if ephemeral:
                body_out["response_type"] = "ephemeral"
            if await self._respond(body.get("response_url"), body_out):
                return
            if ephemeral:
                await self._post_ephemeral(body, message)
                return
        original = body.get("message") or {}
        thread = original.get("thread_ts") or (None if channel.startswith("D") else original.get("ts"))
        await self._post(channel, reply, thread)
