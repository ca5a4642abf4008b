"""No acknowledged question is lost: the sweeper that answers what a dead process left unanswered.

A question's claim stores what answering it needs (bot/claims.py, bot/store_pending.py) and is deleted
once the answer is posted. Every process runs a `Sweeper`: every `every` seconds it renews the leases
of the answers it is working on, then takes the questions whose lease has expired — their process died
after acknowledging them — answers them and posts each (marked "posting" first) through its platform's
`post_later`, all at once, and forgets them. A post that may have gone through (a timeout) is not
retried, nor is one a process died while making; only a post that certainly failed is tried again, up
to `MAX_ATTEMPTS` times.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Protocol

from bot.conversation import Message
from bot.errors import PolicybotError
from bot.platform import Posted
from bot.router import Router
from bot.store_pending import PendingAnswer

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # posts that certainly failed, before a question is given up (and logged)
TAKE = 20  # questions one sweep takes at most (the rest wait for the next sweep)


class PendingLog(Protocol):
    """Where answers in progress are kept (bot.store.Store)."""

    async def take_expired(
        self, lease: timedelta, *, limit: int = ...
    ) -> tuple[list[PendingAnswer], int]: ...
    async def start_posting(self, pending: PendingAnswer) -> bool: ...
    async def finish(self, key: str) -> None: ...
    async def try_later(self, key: str, after: timedelta) -> None: ...


class Sweeper:
    """Answers the questions whose process died between acknowledging and answering them."""

    def __init__(self, store: PendingLog, router: Router, *, every: float = 15.0) -> None:
        self.store = store
        self.router = router
        self.every = every

    async def sweep(self) -> int:
        """One round: renew this process's leases, answer what dead ones left. Returns posts made."""
        await self.router.claims.renew()
        posted = 0
        while True:
            taken, unknown = await self.store.take_expired(self.router.claims.lease, limit=TAKE)
            if unknown:
                log.warning(
                    "%d answer(s) were being posted by a process that died; not posted again "
                    "(they may have been posted)", unknown,
                )  # fmt: skip
            # At once: each post waits on the platform (Slack takes a tenth of a second or more).
            posts = await asyncio.gather(*(self._answer_safely(pending) for pending in taken))
            posted += sum(posts)
            if len(taken) < TAKE:
                return posted

    async def _answer_safely(self, pending: PendingAnswer) -> int:
        try:
            return await self._answer(pending)
        except PolicybotError as exc:  # the store: the lease runs out and the question is taken again
            log.warning("a %s question left unanswered is left for later: %s", pending.platform, exc)
            return 0
        except Exception:  # a bug answering one question must not stop the others, nor repeat
            log.exception("a %s question left unanswered failed; it is dropped", pending.platform)
            await self.store.finish(pending.key)
            return 0

    async def _answer(self, pending: PendingAnswer) -> int:
        platform = self.router.platforms.get(pending.platform)
        if platform is None:  # another replica may serve it
            log.warning("an unanswered %s question is left for a process serving it", pending.platform)
            await self.store.try_later(pending.key, self.router.claims.lease)
            return 0
        message = Message(text=pending.question, lang_hint=pending.lang_hint)
        reply = await self.router.conversation.handle(message)
        if not await self.store.start_posting(pending):
            return 0  # another process took it over meanwhile (this one was too slow)
        outcome = await platform.post_later(pending.reference, reply)
        if outcome is Posted.TRY_LATER and pending.attempts < MAX_ATTEMPTS:
            await self.store.try_later(pending.key, timedelta(seconds=self.every))
            return 0
        await self.store.finish(pending.key)
        if outcome is Posted.POSTED:
            log.info("answered a %s question its process left unanswered", pending.platform)
            return 1
        log.error("a %s question left unanswered could not be answered (%s)", pending.platform, outcome)
        return 0

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Sweep every `every` seconds (the first time at once: a restart answers what it left) until
        `stop`; store trouble is logged and the next round tries again."""
        while not stop.is_set():
            try:
                await self.sweep()
            except PolicybotError as exc:
                log.warning("could not look for unanswered questions: %s", exc)
            except Exception:  # the sweeper outlives a bug: the next round tries again
                log.exception("looking for unanswered questions failed")
            try:
                async with asyncio.timeout(self.every):
                    await stop.wait()
            except TimeoutError:
                pass
