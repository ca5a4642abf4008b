"""A Slack request, checked before bolt sees any of it: its signature on the raw bytes, then its body.

Order matters. The signature (`X-Slack-Signature`, an HMAC of `v0:{timestamp}:{raw body}` with the
signing secret, and `X-Slack-Request-Timestamp` within five minutes) is checked first, on the bytes as
received: an unsigned request is a 401 whatever its body, and nothing of it is decoded, parsed or logged
(bolt's own check logged the whole body of a forged request at INFO). Only a signed request is decoded
(UTF-8, whatever charset its Content-Type claims) and parsed the way bolt parses it (JSON, or a form with
a JSON `payload`), with the bounds of adapters/guards.py, and every field bolt or adapters/slack.py reads
must have the type Slack documents (`SLACK_BODY`). What passes is handed to bolt as text.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.request.internals import parse_body

from adapters.guards import MAX_DEPTH, NonEmpty, Rejection, Required, check_shape, depth, utf8

log = logging.getLogger(__name__)

MAX_AGE = 5 * 60  # seconds a signed request stays valid (Slack's own rule against replays)
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")

_NONE = type(None)
_OPT_STR = (str, _NONE)
_ID = {"id": str, "team_id": _OPT_STR, "enterprise_id": _OPT_STR, "name": _OPT_STR}
_NAMED = (str, _NONE, _ID)  # "U123", or {"id": "U123", …}
_MESSAGE = {
    "type": str, "subtype": _OPT_STR, "user": _OPT_STR, "user_id": str, "bot_id": _OPT_STR, "ts": str,
    "thread_ts": _OPT_STR, "text": _OPT_STR, "blocks": [dict], "channel": _NAMED, "team": _NAMED,
}  # fmt: skip
_EVENT = _MESSAGE | {
    "type": str, "channel": str, "channel_type": str, "event_ts": str, "tab": str, "user_team": str,
    "edited": dict, "bot_profile": (dict, _NONE), "team_id": _OPT_STR, "enterprise_id": _OPT_STR,
    "enterprise": _NAMED, "message": _MESSAGE, "previous_message": _MESSAGE, "item": {"channel": str},
    "assistant_thread": {"channel_id": str, "thread_ts": str}, "workflow_step": dict,
}  # fmt: skip
_AUTHORIZATION = {
    "enterprise_id": _OPT_STR, "team_id": _OPT_STR, "user_id": _OPT_STR, "is_bot": bool,
    "is_enterprise_install": (bool, _NONE),
}  # fmt: skip
_ACTION = {"action_id": Required(str), "block_id": str, "value": str, "type": str}
SLACK_BODY = {
    "type": str, "token": str, "api_app_id": str, "event_id": str, "event_time": int, "team_id": _OPT_STR,
    "enterprise_id": _OPT_STR, "team": _NAMED, "enterprise": _NAMED, "user": _NAMED, "user_id": str,
    "channel": _NAMED, "channel_id": str, "thread_ts": _OPT_STR, "is_enterprise_install": (bool, str, _NONE),
    "is_ext_shared_channel": bool, "authorizations": [_AUTHORIZATION], "event": _EVENT,
    "message": _MESSAGE, "previous_message": _MESSAGE, "actions": NonEmpty(_ACTION),
    "container": {"channel_id": str, "message_ts": str, "thread_ts": str, "is_ephemeral": bool},
    "response_url": str, "response_urls": NonEmpty({"response_url": str}), "trigger_id": str,
    "view": {"type": str, "callback_id": str, "team_id": _OPT_STR, "app_installed_team_id": _OPT_STR},
    "callback_id": str, "action_id": str, "command": str, "text": str, "function_data": dict,
    "workflow_step": dict, "context_team_id": _OPT_STR, "context_enterprise_id": _OPT_STR,
}  # fmt: skip
# An interaction (a button, a shortcut, a modal): who, where and which workspace are objects.
_OBJECT = (_NONE, _ID)
INTERACTION_BODY = SLACK_BODY | {"user": _OBJECT, "channel": _OBJECT, "team": _OBJECT}


def shape_of(body: dict[str, Any]) -> dict[str, Any]:
    """Events (and slash commands, which have no type) name people and places by id; interactions
    by an object."""
    return (
        SLACK_BODY if body.get("type") in (None, "event_callback", "url_verification") else INTERACTION_BODY
    )


class SlackGuard:
    """Checks a request to /slack/events; `clock` is injectable for tests of the five-minute rule."""

    def __init__(self, signing_secret: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = signing_secret.encode()
        self._clock = clock

    def authentic(self, raw: bytes, headers: Mapping[str, str]) -> bool:
        """Whether Slack signed exactly these bytes, less than five minutes ago."""
        timestamp = headers.get("X-Slack-Request-Timestamp") or ""
        signature = headers.get("X-Slack-Signature") or ""
        if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
            return False  # "abc", a negative or fractional time, a signature of another scheme or length
        if abs(self._clock() - int(timestamp)) > MAX_AGE:
            return False
        # On the bytes as received: a body that is not UTF-8 is refused after this, not before.
        digest = hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256)
        return hmac.compare_digest("v0=" + digest.hexdigest(), signature)

    def read(self, raw: bytes, headers: Mapping[str, str], content_type: str) -> str | Rejection:
        """The body as bolt should be given it (text), or why the request is refused.

        `content_type` is the media type without parameters (aiohttp's `request.content_type`).
        """
        if not self.authentic(raw, headers):
            log.warning(
                "Slack request refused (401): missing, malformed, stale or wrong signature; if every "
                "request is refused, check SLACK_SIGNING_SECRET"
            )
            return Rejection(401, "invalid request signature")
        text = utf8(raw)
        if isinstance(text, Rejection):
            return _refused(text)
        if content_type != "application/json" and "payload" in text and not text.startswith("{"):
            # bolt reads any form with the word "payload" in it as an interaction's `payload=` and a
            # slash command asking about a payload as nothing; the word, percent-encoded, reads the same.
            fields = parse_qsl(text, keep_blank_values=True)
            if "payload" not in (name for name, _ in fields):
                text = text.replace("payload", "p%61yload")
        wrong = _malformed(text, content_type)
        return text if wrong is None else _refused(wrong)


def _malformed(text: str, content_type: str) -> Rejection | None:
    """Why a signed body is not one bolt can be given, or None: parsed exactly as bolt will parse it."""
    try:
        body: Any = parse_body(text, content_type)
    except RecursionError:
        return Rejection(400, f"the JSON is nested more than {MAX_DEPTH} levels deep")
    except ValueError:
        return Rejection(400, "the body (or its payload) is not valid JSON")
    if not isinstance(body, dict):
        return Rejection(400, "the body (or its payload) is JSON but not an object")
    if depth(body) > MAX_DEPTH:
        return Rejection(400, f"the JSON is nested more than {MAX_DEPTH} levels deep")
    return check_shape(body, shape_of(body), "not a Slack payload")


def _refused(rejection: Rejection) -> Rejection:
    """A signed request that is malformed: one line for the operator, without the body."""
    log.warning("signed Slack request refused (%d): %s", rejection.status, rejection.reason)
    return rejection


__all__ = ["INTERACTION_BODY", "SLACK_BODY", "SlackGuard"]
