"""Hostile requests for the Slack and Teams guard tests: bodies with a field of the wrong type, and a client
that leaves before its body ends. Each is answered with a 4xx or acknowledged, or noticed in one log line,
never a 500 and never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Callable
from typing import Any

WRONG: list[Any] = [None, 7, True, "x", [], [1], {}, {"id": []}]


def variants(
    sample: dict[str, Any], *paths: str, name: Callable[[dict[str, Any], str], None]
) -> list[tuple[str, dict[str, Any]]]:
    """(label, body) for every value of WRONG at every dotted path of `sample` ("actions.0.value");
    `name` gives each body an id of its own (`path-n`) so that none is dropped as a retry."""
    out = []
    for path in paths:
        for n, value in enumerate(WRONG):
            body = copy.deepcopy(sample)
            *parents, key = [int(part) if part.isdigit() else part for part in path.split(".")]
            node = body
            for parent in parents:
                node = node[parent]
            node[key] = value
            name(body, f"{path}-{n}")
            out.append((f"{path}={value!r}", body))
    return out


async def leave_before_the_body_ends(url: str, head: bytes) -> None:
    """Send `head` (a request line, headers that promise a longer body, and the body's start) to the
    server at `url`, then hang up; return once the server has had time to notice."""
    host, port = url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(head)
    await writer.drain()
    writer.close()
    with contextlib.suppress(ConnectionError):  # closed, not left for the garbage collector
        await writer.wait_closed()
    await asyncio.sleep(0.2)  # the server notices
