"""What stands between the internet and a platform's endpoint: read untrusted bytes without ever failing.

A request is authenticated first, on its raw bytes (adapters/slack_guards.py for Slack's signature,
adapters/teams_auth.py for Teams' token); only then is it decoded and parsed, here, defensively: UTF-8
or a 400, JSON of bounded depth or a 400 (Python's parser raises `RecursionError` on deep nesting, which
is a client's mistake, not a server error), an object or a 400, and every field the bot or its SDK reads
of the type the platform documents (`nonconforming`), so that nothing downstream meets a string where it
expects an object. A malformed request is answered 4xx and logged as one line without its content.

`quiet_client_errors` does the same for requests aiohttp itself cannot parse (a header line over 8 KiB,
a broken request line): aiohttp answers them 400 but logs each at ERROR with a traceback.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)

# Slack's and Teams' payloads are a handful of levels deep (a Teams card's data, a Block Kit message
# inside an interaction payload); anything past this is not one of theirs.
MAX_DEPTH = 40


@dataclass(frozen=True)
class Rejection:
    """The 4xx to answer instead of handling the request; `reason` is safe to log and to send back."""

    status: int
    reason: str

    def response(self) -> web.Response:
        return web.json_response({"error": self.reason}, status=self.status)


# --------------------------------------------------------------------------------------- parsing


async def body_of(request: web.Request) -> bytes | Rejection:
    """The raw body, up to the app's `client_max_size` (past it aiohttp answers 413), or a Rejection
    when the client went away before sending all it announced (aiohttp would log a traceback)."""
    try:
        return await request.read()
    except (ConnectionError, HttpProcessingError) as exc:
        log.info("a request to %s ended before its body did (%s)", request.path, type(exc).__name__)
        return Rejection(400, "the body ended before its announced length")


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply `value` nests lists and objects, counted up to `limit + 1` (without recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def utf8(raw: bytes) -> str | Rejection:
    """The body as text: both platforms send UTF-8, whatever charset a forged header claims."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection(400, "the body is not UTF-8")


def json_value(text: str) -> Any | Rejection:
    """Parsed JSON of at most MAX_DEPTH levels, or a Rejection."""
    try:
        value = json.loads(text)
    except RecursionError:  # nested deeper than the interpreter's limit: certainly too deep
        return Rejection(400, f"the JSON is nested more than {MAX_DEPTH} levels deep")
    except ValueError:
        return Rejection(400, "the body is not valid JSON")
    if depth(value) > MAX_DEPTH:
        return Rejection(400, f"the JSON is nested more than {MAX_DEPTH} levels deep")
    return value


def json_object(raw: bytes | str, what: str = "the body") -> dict[str, Any] | Rejection:
    """`raw` as a JSON object (UTF-8, bounded depth), or a Rejection saying what is wrong with it."""
    text = utf8(raw) if isinstance(raw, bytes) else raw
    if isinstance(text, Rejection):
        return text
    value = json_value(text)
    if isinstance(value, Rejection):
        return value
    if not isinstance(value, dict):
        return Rejection(400, f"{what} is JSON but not an object")
    return value


async def json_body(request: web.Request) -> dict[str, Any] | Rejection:
    """The request's body as a JSON object (`body_of`, then `json_object`), or a Rejection."""
    raw = await body_of(request)
    return raw if isinstance(raw, Rejection) else json_object(raw)


# ----------------------------------------------------------------------------------------- shapes

# A shape says what the fields the bot or its SDK reads must be; fields it does not name are free.
# A shape is a type, a tuple of alternatives, a dict (an object with those fields, each optional) or a
# one-element list (a list of that). `NonEmpty(item)` is a list with at least one item; a field whose
# shape is `Required(shape)` must be there.
Shape = Any


@dataclass(frozen=True)
class NonEmpty:
    item: Shape


@dataclass(frozen=True)
class Required:
    shape: Shape


def nonconforming(value: Any, shape: Shape, path: str = "") -> str | None:
    """The path of the first field of `value` that does not fit `shape`, or None if all fit."""
    if isinstance(shape, tuple):
        fits = any(nonconforming(value, alternative, path) is None for alternative in shape)
        return None if fits else path or "the body"
    if isinstance(shape, Required):
        return nonconforming(value, shape.shape, path)
    if isinstance(shape, NonEmpty):
        return nonconforming(value, [shape.item], path) or (None if value else path)
    if isinstance(shape, list):
        return _list_nonconforming(value, shape[0], path)
    if isinstance(shape, dict):
        return _object_nonconforming(value, shape, path)
    # bool is an int in Python, and neither is the other in JSON
    return None if type(value) is shape else path


def _list_nonconforming(value: Any, item: Shape, path: str) -> str | None:
    if not isinstance(value, list):
        return path
    wrong = (nonconforming(element, item, f"{path}[{n}]") for n, element in enumerate(value))
    return next((w for w in wrong if w is not None), None)


def _object_nonconforming(value: Any, shape: dict[str, Shape], path: str) -> str | None:
    if not isinstance(value, dict):
        return path or "the body"
    for key, field_shape in shape.items():
        inner = f"{path}.{key}" if path else key
        if key in value:
            wrong = nonconforming(value[key], field_shape, inner)
        else:
            wrong = inner if isinstance(field_shape, Required) else None
        if wrong is not None:
            return wrong
    return None


def check_shape(value: Any, shape: Shape, what: str) -> Rejection | None:
    wrong = nonconforming(value, shape)
    return None if wrong is None else Rejection(400, f"{what}: {wrong} does not have the expected type")


# ------------------------------------------------------------------------------------------ logs


class QuietClientErrors(logging.Filter):
    """aiohttp's log of a request it could not parse (HTTP 400): one INFO line instead of an ERROR
    with a traceback. A client's malformed request is not the server's error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            said = record.getMessage()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "%s: answered %s (%s)", (said, error.code, type(error).__name__)
        return True


def quiet_client_errors(logger: logging.Logger | None = None) -> None:
    """Put `QuietClientErrors` on aiohttp's server log (once)."""
    logger = logger or logging.getLogger("aiohttp.server")
    if not any(isinstance(f, QuietClientErrors) for f in logger.filters):
        logger.addFilter(QuietClientErrors())


__all__ = [
    "MAX_DEPTH",
    "NonEmpty",
    "QuietClientErrors",
    "Rejection",
    "Required",
    "body_of",
    "check_shape",
    "depth",
    "json_body",
    "json_object",
    "json_value",
    "nonconforming",
    "quiet_client_errors",
    "utf8",
]
