"""Reading one YAML file safely into a node tree, collecting what is wrong with it as problems.

Every knowledge file is read with PyYAML's *safe* loader, within limits (size, number of files, number of
nodes), and refused, with a `Problem` giving line and column, when it has tabs in its indentation, anchors
or aliases, tags outside YAML's core schema, or broken syntax. `bot.knowledge_loader` turns the nodes into
the model; `bot.schema` checks the same nodes against the JSON Schema.

Only regular files are read (`read_regular`): a named pipe would block the reader forever and a link to
`/dev/zero` would fill memory, so anything else (a FIFO, a device, a socket, or a symlink to one) is a
problem with its path, found without reading it, and no read takes more than the size limit + 1 bytes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import yaml

from bot.errors import PolicybotError, Problem

MAX_FILE_BYTES = 1024 * 1024  # a policy file is a few kB; anything near this is a mistake or an attack
MAX_FILES = 200
MAX_NODES = 200_000  # bounds what one file can expand to, whatever its structure
# libyaml's safe loader when PyYAML was built with it (10x faster), else the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
NULL_TAG = "tag:yaml.org,2002:null"
NULLS = frozenset(("", "~", "null", "Null", "NULL"))  # YAML's plain spellings of "empty"
# What can come just before an anchor (&), an alias (*) or a tag (!): a space, a line break or a flow
# indicator (or nothing, at the start of the file).
BEFORE_NODE_PROPERTY = frozenset(" \t\r\n\x85\u2028\u2029\ufeff[{,:")
# The tags of YAML's core schema. The loader reads every value as the text typed, so any other tag
# (`!!python/...`, `!!binary`, `!custom`) would be silently ignored: it is refused instead.
T = TypeVar("T")
CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)


@dataclass(frozen=True)
class YamlFile:
    """What reading one file gave: its bytes and node tree, each None where it could not be had."""

    raw: bytes | None  # None for a folder, a file too big, or one that could not be read
    node: yaml.Node | None  # None where the file is empty or was refused (its problems say why)
    unreadable: bool  # could not be read or parsed at all, so checks across files would only add noise


class _TextLoader(SAFE_LOADER):  # type: ignore[misc,valid-type]  # a class chosen at import time
    """The safe loader, resolving tags the way the loader reads values: every scalar is the text typed,
    only an empty one (`~`, `null`, nothing) is null. YAML 1.1's implicit booleans, numbers and dates
    are never used, and skipping their patterns makes composing a large file about a third faster."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.nodes = 0  # every node but an alias or one with an explicit tag is resolved once

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        self.nodes += 1
        if kind is yaml.ScalarNode:
            return NULL_TAG if implicit[0] and value in NULLS else "tag:yaml.org,2002:str"
        return "tag:yaml.org,2002:seq" if kind is yaml.SequenceNode else "tag:yaml.org,2002:map"


class _Mark(Protocol):
    """Where the parser was: PyYAML's `Mark`, or libyaml's (0-based line and column)."""

    line: int
    column: int


class NotReadable(PolicybotError):
    """A knowledge file that is not read: what is wrong with it and what HR should do."""

    def __init__(self, message: str, fix: str, *, unreadable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.unreadable = unreadable  # True: the file may be fine but could not be read at all


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def _not_regular(path: Path, mode: int) -> NotReadable:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    if kind == "a folder":
        return NotReadable(
            "this is a folder, not a file",
            "rename it so its name does not end in .yaml or .yml",
            unreadable=False,
        )
    link = " (through a symbolic link)" if path.is_symlink() else ""
    return NotReadable(
        f"this is {kind}{link}, not a regular file; it was not read",
        "replace it with an ordinary text file, or remove it",
        unreadable=True,
    )


def read_regular(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of `path` if it is a regular file (or a symbolic link to one) of at most `limit` bytes.

    Never blocks and never reads more than `limit` + 1 bytes: the kind of file is checked before it is
    opened (opening a FIFO waits for a writer; opening some devices does something), and again on the
    open descriptor, which is non-blocking, in case the path was swapped in between. Raises NotReadable.
    """
    try:
        info = os.stat(path)  # follows links: a link to a policy file (a Kubernetes ConfigMap) is fine
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, info.st_mode)
        if info.st_size > limit:
            raise _too_big(f"{info.st_size} bytes", limit)
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags)
    except OSError as exc:  # a dangling link, no read permission, or removed while being read
        raise NotReadable(
            f"the file could not be read ({exc.strerror or exc})",
            "check that it exists and that policybot may read it, then save again",
            unreadable=True,
        ) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise NotReadable(
            f"the file could not be read ({exc.strerror})",
            "check that it exists and that policybot may read it, then save again",
            unreadable=True,
        ) from exc
    finally:
        os.close(fd)
    if size > limit:  # it grew after it was sized
        raise _too_big(f"more than {limit} bytes", limit)
    return b"".join(chunks)


def _too_big(size: str, limit: int) -> NotReadable:
    fix = "split it into smaller files"
    return NotReadable(f"the file is {size} (at most {limit})", fix, unreadable=False)


def _add(problems: list[Problem], file: str, mark: _Mark | None, message: str, fix: str) -> None:
    """A problem at `mark` (where the parser was; None: the file as a whole)."""
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
    problems.append(Problem(file, line, column, None, message, fix))


def _walk(node: yaml.Node) -> Iterator[yaml.Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack.extend((key, value))


def _may_have_node_properties(text: str) -> bool:
    """False when the text cannot hold an anchor, an alias or a tag (HR's files, nearly always): then
    it needs no look at its events. Scans with `str.find`, a few milliseconds for a large file."""
    for mark in "!&*":
        at = text.find(mark)
        while at != -1:
            if at == 0 or text[at - 1] in BEFORE_NODE_PROPERTY:
                return True
            at = text.find(mark, at + 1)
    return False


def _plain_yaml(problems: list[Problem], file: str, text: str) -> bool:
    """Report the first anchor or alias and every tag outside the core schema; True if there are none.

    Read from the parser's events, which keep what the node tree loses: where an anchor is (an alias
    only repeats a node), and whether a tag was written at all (the tree also gives `<<` and `=`
    tags HR never typed). HR's files have no use for anchors; refusing them all rules out expansion
    attacks such as the billion laughs.
    """
    before = len(problems)
    anchored = False
    for event in yaml.parse(text, Loader=SAFE_LOADER):
        if not anchored and (isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None)):
            anchored = True
            _add(
                problems,
                file,
                event.start_mark,
                "anchors and aliases (&name / *name) are not supported",
                "write the text out in full where it is needed",
            )
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in CORE_TAGS:
            shown = re.sub(r"^tag:yaml\.org,2002:", "!!", tag)
            _add(
                problems,
                file,
                event.start_mark,
                f"the YAML tag '{shown}' is not supported",
                f"if '{shown}' is meant as text, put the whole text in quotes; otherwise remove the tag",
            )
    return len(problems) == before


def _compose(problems: list[Problem], file: str, raw: bytes) -> yaml.Node | None:  # noqa: C901, PLR0911 — one return per way a YAML file can be unreadable
    """Parse one file to a node tree with the safe loader, refusing tabs, anchors and aliases, tags
    outside YAML's core schema, and huge trees."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _add(problems, file, None, f"the file is not UTF-8 text (byte {exc.start})", "save it as UTF-8")
        return None
    before = len(problems)
    for number, line in enumerate(text.splitlines() if "\t" in text else (), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            problems.append(
                Problem(
                    file,
                    number,
                    indent.index("\t") + 1,
                    None,
                    "the line is indented with a tab",
                    "indent with spaces only (two per level)",
                )
            )
    if len(problems) > before:
        return None
    try:
        properties = _may_have_node_properties(text)
        if properties and not _plain_yaml(problems, file, text):
            return None
        loader = _TextLoader(text)
        try:
            node: yaml.Node | None = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "the YAML is malformed"
        fix = "check the indentation and that each 'key: value' has a space after the colon"
        if "found character '\\t'" in str(exc):
            fix = "replace the tab with spaces"
        _add(problems, file, mark, problem, fix)
        return None
    except yaml.YAMLError as exc:
        _add(problems, file, None, f"the YAML is malformed: {exc}", "check the file's syntax")
        return None
    if node is None:
        return None
    # Without node properties every node was resolved once; with them (aliases, tags), count them.
    nodes = sum(1 for _ in itertools.islice(_walk(node), MAX_NODES + 1)) if properties else loader.nodes
    if nodes > MAX_NODES:
        _add(
            problems,
            file,
            node.start_mark,
            f"the file has more than {MAX_NODES} items",
            "split it into several files",
        )
        return None
    return node


def knowledge_files(directory: Path) -> list[Path]:
    """The files the loader reads, in the order it reads them."""
    return sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))


def compose_file(path: Path) -> yaml.Node | None:
    """One file's node tree (with line marks) under the loader's rules; None where the loader could not
    read it (a folder, too big, not UTF-8, tabs, syntax, anchors, tags: `load_knowledge` reports those)
    or it is empty."""
    return compose_raw(path, read_raw(path))


def compose_raw(path: Path, raw: bytes | NotReadable) -> yaml.Node | None:
    """`compose_file` of what `read_raw` gave for `path` (no I/O)."""
    if isinstance(raw, NotReadable):
        return None
    problems: list[Problem] = []
    node = _compose(problems, str(path), raw)
    return None if problems else node


def read_yaml(path: Path, problems: list[Problem]) -> YamlFile:
    """Read one knowledge file within the limits and compose it, appending what is wrong to `problems`."""
    return parse_yaml(path, read_raw(path), problems)


def read_raw(path: Path) -> bytes | NotReadable:
    """The bytes of one knowledge file, or why they were not read (for `parse_yaml` to report)."""
    try:
        return read_regular(path)
    except NotReadable as exc:
        return exc


def parse_yaml(path: Path, raw: bytes | NotReadable, problems: list[Problem]) -> YamlFile:
    """Compose what `read_raw` gave for `path`, appending what is wrong to `problems` (no I/O)."""
    file = str(path)
    if isinstance(raw, NotReadable):
        _add(problems, file, None, raw.message, raw.fix)
        return YamlFile(None, None, unreadable=raw.unreadable)
    before = len(problems)
    node = _compose(problems, file, raw)
    return YamlFile(raw, node, unreadable=node is None and len(problems) > before)


async def off_the_loop(function: Callable[[], T], name: str) -> T:
    """`function()` in a daemon thread of its own, awaited.

    Unlike `asyncio.to_thread`, a read stuck in the kernel (a hung network mount) can never hold up
    shutdown: the default executor's threads are joined when the process exits, a daemon thread is not.
    A caller that stops waiting (a timeout, a cancelled reload) leaves the thread to finish on its own.
    """
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not done.set_running_or_notify_cancel():
            return
        try:
            done.set_result(function())
        except BaseException as exc:  # handed to the awaiting task, as asyncio.to_thread does
            done.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await asyncio.wrap_future(done)
