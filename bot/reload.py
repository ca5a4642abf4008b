"""Live reloads of the knowledge base: when HR saves a file, on SIGHUP, and on an admin's `reload`.

A reload loads the whole folder again and swaps it in only when it loads without errors
(`Conversation.reload` swaps atomically: a question in flight is answered from the old or the new base).
A broken edit never takes the bot down: the last good knowledge base stays in service, the full problem
list is logged with file:line, and the notifiers the adapters registered tell HR what to fix. The
state (served version, when it was loaded, the rejected edit) is what `/healthz` shows.

Platform-neutral: the Slack and Teams adapters register notifiers with `on_result`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watchfiles import awatch

from bot.conversation import Conversation
from bot.errors import KnowledgeError, Problem
from bot.index_cache import prebuilt, snapshot_name
from bot.knowledge import KnowledgeBase
from bot.knowledge_loader import load_knowledge
from bot.matching import Index
from bot.yaml_files import off_the_loop

log = logging.getLogger(__name__)

DEBOUNCE_MS = 1600  # watchfiles' default: an editor's save (temp file, rename) arrives as one batch
# How often watchfiles' thread wakes (taking the GIL) to see whether more changes came or it must stop:
# changes quieter than this for a step end a burst. Its default, 50 ms, is 20 wake-ups a second all day
# long (an idle serve: 5 CPU ticks in 30 s against 2 at 400 ms, about 0.1 ms per answer at 10 questions
# a second); 400 ms is 2.5 a second, and an edit is still read within a debounce plus 0.4 s. Never
# longer than the debounce itself.
STEP_MS = 400
WATCH_RETRY_SECONDS = 5.0  # after the watcher itself failed (folder briefly gone during a deploy)
# Seconds a reload may spend reading the folder. Reading never blocks on a file (bot/yaml_files.py), but a
# hung network mount could: the reload gives up instead of holding its lock, and the read is left to its
# daemon thread, which cannot hold up shutdown.
LOAD_TIMEOUT = 60.0
PROBLEMS_SHOWN = 20  # in a chat message; the log and `policybot kb check` have all of them


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Rejection:
    """The newest edit that was not loaded, and why."""

    at: datetime
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class ReloadResult:
    """One reload attempt: `version` is what is served afterwards; `problems` are the errors (if not ok)."""

    ok: bool
    version: str
    changed: bool
    reason: str
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()  # advice on the edit that was loaded (confusable examples)


Notify = Callable[[ReloadResult], Awaitable[None]]


class Reloader:
    """Reloads `directory` into `conversation`; watches it with watchfiles when `watch` runs."""

    def __init__(
        self,
        conversation: Conversation,
        directory: Path,
        *,
        clock: Callable[[], datetime] = utcnow,
        debounce_ms: int = DEBOUNCE_MS,
        step_ms: int | None = None,
        force_polling: bool | None = None,
        load_timeout: float = LOAD_TIMEOUT,
        cache: Path | None = None,
    ) -> None:
        """`cache`: where index snapshots are kept (bot/index_cache.py); with one, an edit is built by a
        process of its own, and the serving process only reads the result back."""
        self.conversation = conversation
        self.directory = directory
        self.cache = cache
        self.clock = clock
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms if step_ms is not None else min(STEP_MS, debounce_ms)
        self.force_polling = force_polling
        self.load_timeout = load_timeout
        self.loaded_at = clock()
        self.rejected: Rejection | None = None
        self._notifiers: list[Notify] = []
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[ReloadResult]] = set()
        self._notified: tuple[str, ...] | None = None  # the problem list HR was last told about

    def on_result(self, notify: Notify) -> None:
        """Call `notify` when an edit is rejected (once per distinct problem list) and when the knowledge
        base loads again after a rejection. A failing notifier is logged; it never stops a reload."""
        self._notifiers.append(notify)

    def status(self) -> dict[str, Any]:
        """What `/healthz` shows about the knowledge base."""
        rejected = self.rejected
        return {
            "version": self.conversation.kb.version,
            "loaded_at": self.loaded_at.isoformat(),
            "rejected": (
                {"at": rejected.at.isoformat(), "problems": len(rejected.problems)} if rejected else None
            ),
        }

    # ------------------------------------------------------------------------------------ reloading

    async def reload(self, reason: str) -> ReloadResult:
        """Load the folder and serve it if it has no errors; never raises for a broken folder."""
        async with self._lock:  # one at a time; a reload that waited reads the newest files
            result = await self._reload(reason)
        await self._notify(result)
        return result

    def request(self, reason: str) -> None:
        """Start a reload without waiting for it (from a signal handler)."""
        task = asyncio.get_running_loop().create_task(self.reload(reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload(self, reason: str) -> ReloadResult:
        served = self.conversation.kb.version
        built: tuple[KnowledgeBase, Index] | None = None
        try:
            async with asyncio.timeout(self.load_timeout) as deadline:
                if self.cache is not None:
                    # Built by a process of its own (its garbage never lives here, nor holds up answers).
                    cache, directory = self.cache, self.directory
                    name = await off_the_loop(lambda: snapshot_name(directory, cache), "policybot-reload")
                    if name is not None:  # the folder is read: the build is bounded by BUILD_TIMEOUT
                        deadline.reschedule(None)
                        built = await off_the_loop(
                            lambda: prebuilt(directory, cache, name), "policybot-reload"
                        )
                        deadline.reschedule(asyncio.get_running_loop().time() + self.load_timeout)
                # Else, or if that failed (errors in the files among the reasons), here, which says why.
                kb = built[0] if built is not None else await load_knowledge(self.directory)
        except TimeoutError:
            log.error("reading the knowledge folder %s took over %.0f s; gave up", self.directory,
                      self.load_timeout)  # fmt: skip
            return self._reject_folder(
                reason,
                f"reading the folder took more than {self.load_timeout:g} seconds",
                "check that the folder's disk or network share answers, then save again",
            )
        except KnowledgeError as exc:
            return self._reject(reason, tuple(p for p in exc.problems if p.severity == "error"))
        except Exception as exc:  # e.g. a file removed between listing the folder and reading it
            log.exception("the knowledge folder %s could not be read", self.directory)
            return self._reject_folder(
                reason,
                f"the folder could not be read ({exc})",
                "check that the files exist and can be read, then save again",
            )
        changed = kb.version != served
        warnings: tuple[Problem, ...] = ()
        if changed:
            previous, previous_index = self.conversation.kb, self.conversation.index
            # The new index is built off the event loop; the swap itself is one attribute assignment.
            try:
                if built is not None:
                    self.conversation.reload(kb, built[1])
                else:
                    await asyncio.to_thread(self.conversation.reload, kb)
            except Exception as exc:  # a bug this edit set off: keep serving, tell HR, log it for us
                log.exception("knowledge base %s loaded but its search index could not be built", kb.version)
                failure = f"{type(exc).__name__}: {exc}"
                return self._reject_folder(
                    reason,
                    f"the bot could not build its search index from this version ({failure})",
                    "undo the last edit, and tell whoever runs policybot (the log has the details)",
                )
            self.loaded_at = self.clock()
            # Cleared with the swap, before the advice (which takes a while): /healthz never shows the new
            # version beside the rejection it replaced.
            self.rejected = None
            log.info(
                "knowledge base %s loaded (%s): %d entries, %d tips, %d warning(s); was %s",
                kb.version, reason, len(kb.entries), len(kb.tips), len(kb.warnings), served,
            )  # fmt: skip
            warnings = await asyncio.to_thread(self._advice, kb, previous, previous_index)
        else:
            log.info("knowledge base %s is unchanged (%s)", served, reason)
            self.rejected = None
        return ReloadResult(ok=True, version=kb.version, changed=changed, reason=reason, warnings=warnings)

    def _advice(
        self, kb: KnowledgeBase, previous: KnowledgeBase, previous_index: Index
    ) -> tuple[Problem, ...]:
        """What `kb check` would warn about the entries this edit changed, where the edit made them more
        confusable (never blocks the edit)."""
        from bot.knowledge_check import self_test

        try:
            found = tuple(
                self_test(kb, self.conversation.index, previous=previous, previous_index=previous_index)
            )
        except Exception:  # advice only: a failure here must not undo a good reload
            log.exception("could not check the edit for confusable examples")
            return ()
        for problem in found:
            log.warning("knowledge base %s: %s", kb.version, problem)
        return found

    def _reject_folder(self, reason: str, message: str, fix: str) -> ReloadResult:
        """Reject the edit for a problem of the whole folder (no file or line to point at)."""
        return self._reject(reason, (Problem(str(self.directory), None, None, None, message, fix),))

    def _reject(self, reason: str, problems: tuple[Problem, ...]) -> ReloadResult:
        version = self.conversation.kb.version
        log.error(
            "knowledge base edit rejected (%s): %d problem(s); still serving %s\n%s",
            reason, len(problems), version, "\n".join(map(str, problems)),
        )  # fmt: skip
        same = self.rejected is not None and self.rejected.problems == problems
        if not same:
            self.rejected = Rejection(self.clock(), problems)
        return ReloadResult(ok=False, version=version, changed=False, reason=reason, problems=problems)

    async def _notify(self, result: ReloadResult) -> None:
        if result.ok:
            if self._notified is None:
                return  # nothing was wrong: a successful save is not news for the HR channel
            self._notified = None
        else:
            listed = tuple(map(str, result.problems))
            if listed == self._notified:
                return  # HR was told about exactly these problems already
            self._notified = listed
        for notify in self._notifiers:
            try:
                await notify(result)
            except Exception:  # one platform failing must not keep the other from hearing
                log.exception("could not notify HR about the knowledge-base reload")

    # ------------------------------------------------------------------------------------- watching

    async def watch(self, stop: asyncio.Event | None = None) -> None:
        """Reload after every batch of file changes in the folder, until `stop` is set or cancelled."""
        log.info("watching %s for knowledge-base edits", self.directory)
        while stop is None or not stop.is_set():
            try:
                async for changes in awatch(
                    self.directory,
                    debounce=self.debounce_ms,
                    step=self.step_ms,
                    stop_event=stop,
                    force_polling=self.force_polling,
                ):
                    names = sorted({Path(path).name for _, path in changes})
                    await self.reload("changed: " + ", ".join(names[:5]) + (" …" if len(names) > 5 else ""))
                return
            except Exception:  # the folder vanished for a moment (a deploy swapping it): try again
                log.exception("watching %s failed; trying again in %ss", self.directory, WATCH_RETRY_SECONDS)
                await asyncio.sleep(WATCH_RETRY_SECONDS)

    # ------------------------------------------------------------------------------------ reporting

    def message(self, result: ReloadResult, lang: str) -> str:
        """The outcome in HR's words (from messages.yaml), with the problems to fix (markdown)."""
        if result.ok:
            return self.conversation.say("reload_ok", lang, version=result.version)
        head = self.conversation.say("reload_failed", lang, count=str(len(result.problems)))
        return "\n".join([head, *problem_lines(result.problems, self.directory)])


def problem_lines(
    problems: tuple[Problem, ...] | list[Problem], directory: Path, limit: int = PROBLEMS_SHOWN
) -> list[str]:
    """One markdown bullet per problem, file names relative to the knowledge folder."""
    lines = []
    for problem in problems[:limit]:
        try:
            name = str(Path(problem.file).relative_to(directory))
        except ValueError:
            name = problem.file
        where, _, rest = str(replace(problem, file=name)).partition(": ")
        lines.append(f"• `{where}`: {rest}")
    if len(problems) > limit:
        lines.append(f"• … and {len(problems) - limit} more: run `policybot kb check` to see them all")
    return lines
