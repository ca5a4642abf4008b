"""Requests with a field of the wrong type, for the Slack and Teams guard tests: each is answered with a
4xx or acknowledged, never a 500 and never a traceback."""

from __future__ import annotations

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
