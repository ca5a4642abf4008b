"""HR saves a file and the bot serves it within seconds; a broken save never takes the bot down."""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.conversation import Conversation, Message, ReplyKind
from bot.knowledge import KnowledgeBase
from bot.knowledge_loader import load_knowledge
from bot.matching import Index
from bot.reload import Reloader, ReloadResult, problem_lines
from tests.conftest import ENTRIES

OLD = (
    "Adding your manager on social media",
    "Yes, you may — but you never have to. Decline politely if you prefer.",
)
NEW = ("Your manager on social media (new)", "New answer, yes, but you never have to.")


def version_b(directory: Path) -> None:
    """HR's edit: a new title and answer for friend-manager."""
    text = ENTRIES.replace(OLD[0], NEW[0]).replace(OLD[1], NEW[1])
    (directory / "entries.yaml").write_text(text, encoding="utf-8")


def version_a(directory: Path) -> None:
    (directory / "entries.yaml").write_text(ENTRIES, encoding="utf-8")


def broken(directory: Path) -> None:
    """A save with two mistakes: a date that is not one (line 22) and a misspelt field (line 39)."""
    text = ENTRIES.replace("reviewed: 2026-11-01", "reviewed: 1 November").replace("    links:", "    linkz:")
    (directory / "entries.yaml").write_text(text, encoding="utf-8")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def started(directory: Path, clock: Clock | None = None) -> tuple[Conversation, Reloader]:
    conversation = Conversation(await load_knowledge(directory))
    return conversation, Reloader(conversation, directory, clock=clock or Clock(), debounce_ms=50, step_ms=10)


async def test_questions_asked_during_reloads_get_the_old_or_the_new_answer_never_an_error(
    tiny_kb_dir: Path,
) -> None:
    conversation, reloader = await started(tiny_kb_dir)
    questions = ["Can I add my manager on Facebook?", "Kan jeg legge til sjefen min på Facebook?"]
    seen: list[tuple[str | None, str]] = []
    reloads_done = asyncio.Event()

    async def keep_asking(n: int) -> None:
        """Ask until the reloads are over, so questions land before, between and after the swaps."""
        while not reloads_done.is_set():
            reply = await conversation.handle(Message(questions[n % 2]))
            assert reply.kind is ReplyKind.ANSWER and reply.entry_id == "friend-manager"
            if reply.lang == "en":
                seen.append((reply.title, reply.text))
            await asyncio.sleep(random.random() / 500)

    async def edit_and_reload() -> None:
        try:
            for round_ in range(12):
                (version_b if round_ % 2 == 0 else version_a)(tiny_kb_dir)
                result = await reloader.reload("test")
                assert result.ok and result.changed
                await asyncio.sleep(0.002)
        finally:
            reloads_done.set()

    await asyncio.gather(edit_and_reload(), *(keep_asking(n) for n in range(20)))

    assert set(seen) == {OLD, NEW}  # both versions answered, and never a title of one with the other's text


async def test_a_broken_edit_keeps_the_last_good_base_and_says_what_to_fix(tiny_kb_dir: Path) -> None:
    clock = Clock()
    conversation, reloader = await started(tiny_kb_dir, clock)
    served = conversation.kb.version
    told: list[ReloadResult] = []

    async def tell_hr(result: ReloadResult) -> None:
        told.append(result)

    reloader.on_result(tell_hr)
    broken(tiny_kb_dir)
    clock.now += timedelta(minutes=5)
    result = await reloader.reload("changed: entries.yaml")

    assert not result.ok and result.version == served == conversation.kb.version
    assert [(p.line, p.message) for p in result.problems] == [
        (22, "'1 November' is not a date"),
        (39, "unknown field 'linkz' in an entry"),
    ]
    reply = await conversation.handle(Message("Can I add my manager on Facebook?"))
    assert reply.title == OLD[0]  # still answering from the last good version
    assert reloader.status() == {
        "version": served,
        "loaded_at": "2026-11-27T09:00:00+00:00",
        "rejected": {"at": "2026-11-27T09:05:00+00:00", "problems": 2},
    }
    message = reloader.message(result, "en")
    assert message.splitlines() == [
        "EN reload_failed 2",
        "• `entries.yaml:22:15`: error [friend-manager]: '1 November' is not a date — "
        "write it as YYYY-MM-DD, e.g. 2026-11-01",
        "• `entries.yaml:39:5`: error [workplace-photos]: unknown field 'linkz' in an entry — "
        "did you mean 'links'?",
    ]

    await reloader.reload("changed: entries.yaml")  # saved again, same mistakes
    assert len(told) == 1  # HR is not told the same thing twice

    version_b(tiny_kb_dir)
    clock.now += timedelta(minutes=5)
    fixed = await reloader.reload("changed: entries.yaml")

    assert fixed.ok and fixed.changed and conversation.kb.version == fixed.version != served
    assert [r.ok for r in told] == [False, True]  # and told when it is fixed
    assert reloader.message(fixed, "nb") == f"NB reload_ok {fixed.version}"
    assert reloader.status() == {
        "version": fixed.version,
        "loaded_at": "2026-11-27T09:10:00+00:00",
        "rejected": None,
    }


async def test_with_a_snapshot_folder_an_edit_is_built_apart_and_a_broken_one_still_says_what_to_fix(
    tiny_kb_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    conversation = Conversation(await load_knowledge(tiny_kb_dir))
    reloader = Reloader(conversation, tiny_kb_dir, clock=Clock(), debounce_ms=50, step_ms=10, cache=cache)

    version_b(tiny_kb_dir)
    result = await reloader.reload("changed: entries.yaml")

    assert result.ok and result.changed
    # Built by a process of its own, which keeps it as a snapshot (a build in this process keeps none).
    [snapshot] = cache.glob("index-*.pickle")
    reply = await conversation.handle(Message("Can I add my manager on Facebook?"))
    assert (reply.title, reply.text) == NEW

    broken(tiny_kb_dir)
    result = await reloader.reload("changed: entries.yaml")

    assert not result.ok and result.version == conversation.kb.version
    assert [(p.line, p.message) for p in result.problems] == [
        (22, "'1 November' is not a date"),
        (39, "unknown field 'linkz' in an entry"),
    ]
    assert list(cache.glob("index-*.pickle")) == [snapshot]


async def test_a_save_that_changes_nothing_is_not_a_new_version(tiny_kb_dir: Path) -> None:
    conversation, reloader = await started(tiny_kb_dir)
    state = conversation.index

    result = await reloader.reload("SIGHUP")

    assert result.ok and not result.changed and conversation.index is state


async def test_a_file_that_cannot_be_read_is_a_rejected_edit_not_a_crash(tiny_kb_dir: Path) -> None:
    conversation, reloader = await started(tiny_kb_dir)
    (tiny_kb_dir / "new.yaml").symlink_to(tiny_kb_dir / "gone.yaml")  # e.g. removed mid-deploy

    result = await reloader.reload("changed: new.yaml")

    assert not result.ok and "could not be read" in result.problems[0].message
    assert conversation.kb.version == reloader.status()["version"]


async def test_an_empty_entry_is_rejected_by_the_running_bot_as_by_kb_check(tiny_kb_dir: Path) -> None:
    """`entries: [{}]` once failed `kb check` but loaded as a new version in the running bot: one rule now."""
    conversation, reloader = await started(tiny_kb_dir)
    served = conversation.kb.version
    (tiny_kb_dir / "more.yaml").write_text("entries: [{}]\n", encoding="utf-8")

    result = await reloader.reload("changed: more.yaml")

    assert not result.ok and conversation.kb.version == served
    [problem] = result.problems
    assert (Path(problem.file).name, problem.line, problem.message) == ("more.yaml", 1, "the entry is empty")


async def test_a_named_pipe_saved_into_the_folder_is_rejected_and_later_edits_still_load(
    tiny_kb_dir: Path,
) -> None:
    """`mkfifo knowledge/x.yaml` once held the reload's lock forever: no edit after it was ever loaded."""
    conversation, reloader = await started(tiny_kb_dir)
    os.mkfifo(tiny_kb_dir / "x.yaml")

    async with asyncio.timeout(5):
        result = await reloader.reload("changed: x.yaml")
        assert not result.ok and "named pipe" in result.problems[0].message
        (tiny_kb_dir / "x.yaml").unlink()
        version_b(tiny_kb_dir)
        assert (await reloader.reload("changed: x.yaml, entries.yaml")).changed

    reply = await conversation.handle(Message("Can I add my manager on Facebook?"))
    assert reply.title == NEW[0]


@pytest.mark.parametrize("snapshots", [False, True], ids=["built here", "built apart"])
async def test_a_read_that_hangs_is_given_up_and_does_not_hold_the_next_reload(
    tiny_kb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snapshots: bool
) -> None:
    """A hung network mount: the reload gives up after its timeout, in a thread that cannot block exit."""
    conversation, reloader = await started(tiny_kb_dir)
    reloader.load_timeout = 0.3
    reloader.cache = tmp_path / "cache" if snapshots else None
    hung = threading.Event()
    stat = os.stat

    def hangs_once(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if Path(path).name == "entries.yaml" and not hung.is_set():
            hung.set()
            threading.Event().wait(2)  # the kernel not answering, for longer than the timeout
        return stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", hangs_once)
    served = conversation.kb.version

    result = await reloader.reload("SIGHUP")

    assert not result.ok and result.version == served
    assert result.problems[0].message == "reading the folder took more than 0.3 seconds"
    version_b(tiny_kb_dir)
    assert (await asyncio.wait_for(reloader.reload("SIGHUP"), 5)).changed  # the lock was let go
    stuck = [t for t in threading.enumerate() if t.name in ("policybot-knowledge-load", "policybot-reload")]
    assert stuck and all(t.daemon for t in stuck)  # exiting never waits for it


async def test_an_index_that_cannot_be_built_is_a_rejected_edit_and_its_traceback_is_logged(
    tiny_kb_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    built: list[KnowledgeBase] = []

    def fails_after_the_first(kb: KnowledgeBase) -> Index:
        built.append(kb)
        if len(built) > 1:
            raise ValueError("zip() argument 2 is shorter than argument 1")
        return Index(kb)

    conversation = Conversation(await load_knowledge(tiny_kb_dir), make_index=fails_after_the_first)
    reloader = Reloader(conversation, tiny_kb_dir, clock=Clock(), debounce_ms=50, step_ms=10)
    served = conversation.kb.version
    told: list[ReloadResult] = []

    async def tell_hr(result: ReloadResult) -> None:
        told.append(result)

    reloader.on_result(tell_hr)
    version_b(tiny_kb_dir)
    result = await reloader.reload("changed: entries.yaml")

    assert not result.ok and result.version == served == conversation.kb.version
    [problem] = result.problems
    assert problem.message.startswith("the bot could not build its search index from this version")
    assert [r.ok for r in told] == [False] and reloader.rejected is not None
    assert any(r.exc_info and r.exc_info[0] is ValueError for r in caplog.records)  # for the developers
    reply = await conversation.handle(Message("Can I add my manager on Facebook?"))
    assert reply.title == OLD[0]


async def test_a_notifier_that_fails_does_not_stop_the_others(tiny_kb_dir: Path) -> None:
    _, reloader = await started(tiny_kb_dir)
    told: list[bool] = []

    async def down(result: ReloadResult) -> None:
        raise ConnectionError("Slack is down")

    async def fine(result: ReloadResult) -> None:
        told.append(result.ok)

    reloader.on_result(down)
    reloader.on_result(fine)
    broken(tiny_kb_dir)
    await reloader.reload("test")

    assert told == [False]


async def test_saving_a_file_reloads_within_seconds_and_a_broken_save_is_rejected(tiny_kb_dir: Path) -> None:
    conversation, reloader = await started(tiny_kb_dir)
    served = conversation.kb.version
    stop = asyncio.Event()
    watcher = asyncio.create_task(reloader.watch(stop))
    try:
        await asyncio.sleep(0.2)  # the watch is set up
        version_b(tiny_kb_dir)
        await wait_until(lambda: conversation.kb.version != served)
        reply = await conversation.handle(Message("Can I add my manager on Facebook?"))
        assert reply.title == NEW[0]

        good = conversation.kb.version
        broken(tiny_kb_dir)
        await wait_until(lambda: reloader.rejected is not None)
        assert conversation.kb.version == good
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 5)


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll what the watcher changes (it has no event to wait on; it runs on its own)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (polling state another task changes, in a test)
            await asyncio.sleep(0.02)


def test_a_long_problem_list_is_cut_for_chat(tmp_path: Path) -> None:
    from bot.errors import Problem

    problems = [Problem(str(tmp_path / "a.yaml"), n, 1, None, f"problem {n}", "fix it") for n in range(1, 31)]

    lines = problem_lines(problems, tmp_path, limit=20)

    assert len(lines) == 21 and lines[0] == "• `a.yaml:1:1`: error: problem 1 — fix it"
    assert lines[-1] == "• … and 10 more: run `policybot kb check` to see them all"


async def test_the_watcher_wakes_a_few_times_a_second_never_slower_than_the_debounce(
    tiny_kb_dir: Path,
) -> None:
    conversation = Conversation(await load_knowledge(tiny_kb_dir))

    assert Reloader(conversation, tiny_kb_dir).step_ms == 400  # not watchfiles' 20 wake-ups a second
    assert Reloader(conversation, tiny_kb_dir, debounce_ms=100).step_ms == 100  # a quick debounce stays quick
