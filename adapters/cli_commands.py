"""The CLI's commands that work on the database and the platforms: `db upgrade`, `tips preview`,
`tips post` and `report` (adapters/cli.py parses the command line and runs them).

Like the rest of the CLI they print; the platform SDKs are imported only by `tips post`, through the
composition root (adapters/services.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

from bot.config import Settings, cache_dir_from_env
from bot.conversation import Conversation
from bot.errors import ConfigError
from bot.index_cache import load_indexed
from bot.knowledge import KnowledgeBase
from bot.knowledge_loader import resolve_knowledge_dir
from bot.yaml_files import off_the_loop


async def open_conversation(settings: Settings, knowledge: Path | None = None) -> Conversation:
    """The knowledge base and its index, from the snapshot the last command kept when nothing changed
    since (bot/index_cache.py)."""
    directory = resolve_knowledge_dir(knowledge or settings.knowledge_dir)
    cache = fit_cache_dir()
    kb, index = await off_the_loop(lambda: load_indexed(directory, cache), "policybot-knowledge-load")
    return Conversation(
        kb, default_lang=settings.default_lang, hr_contact=settings.hr_contact, fit_cache=cache, index=index
    )


def fit_cache_dir() -> Path | None:
    """Where `ask`, `chat`, `match` and `kb check` keep the confidence fitted on each knowledge-base
    version and a snapshot of the last few indexes (POLICYBOT_CACHE_DIR, else the user's cache folder;
    "off" loads and fits anew every time)."""
    return cache_dir_from_env(os.environ)


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from bot.database import engine_url
    from bot.store import Store

    store = await Store.open(settings.database_url, retention_days=settings.retention_days)
    await store.close()
    where = engine_url(settings.database_url)[0].render_as_string(hide_password=True)
    print(f"{where}: the database schema is up to date")
    return 0


async def cmd_tips_preview(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store import Store
    from bot.tips import TipScheduler

    if args.days < 1:
        raise ConfigError(f"--days {args.days}: give a number of days of at least 1")
    conversation = await open_conversation(settings, args.knowledge)
    store = await Store.open(settings.database_url, retention_days=settings.retention_days)
    try:
        scheduler = TipScheduler.from_settings(settings, store, conversation, [])
        plan = await scheduler.preview(days=args.days)
    finally:
        await store.close()
    if not plan:
        print(
            "No tips planned: set POLICYBOT_TIP_SLACK_CHANNELS, or install the bot in a Teams team, "
            f"and check POLICYBOT_TIP_DAYS; the knowledge base has {len(conversation.kb.tips)} tips."
        )
    for item in plan:
        print(f"{item.day:%a %Y-%m-%d}  {item.target.key} [{item.target.lang}]  {item.status:<8} "
              f"{item.tip_id}: {item.text}")  # fmt: skip
    return 0


async def cmd_tips_post(args: argparse.Namespace, settings: Settings) -> int:
    from adapters.services import Services  # the platforms' tip deliverers, built as `serve` builds them
    from bot.store import TipStatus

    services = await Services.open(settings, knowledge=args.knowledge)
    try:
        if not services.deliverers:
            raise ConfigError("no chat platform is configured to post tips to (set Slack or Teams variables)")
        outcomes = await services.tips.post_now(args.target)
    finally:
        await services.close()
    for outcome in outcomes:
        error = f" ({outcome.error})" if outcome.error else ""
        print(f"{outcome.target.key} [{outcome.target.lang}]: {outcome.tip_id} {outcome.status}{error}")
    if not outcomes:
        print("No tip targets: set POLICYBOT_TIP_SLACK_CHANNELS, or install the bot in a Teams team.")
    return 0 if all(o.status is TipStatus.POSTED for o in outcomes) else 1


async def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from zoneinfo import ZoneInfo

    from bot.report import build_report
    from bot.report_formats import render
    from bot.store import Store

    tz = ZoneInfo(settings.timezone)
    today = datetime.now(tz).date()
    if args.since is not None and args.since > today:
        raise ConfigError(
            f"--since {args.since.isoformat()} is after today ({today.isoformat()}): nothing to report"
        )
    conversation = await open_conversation(settings, args.knowledge)
    store = await Store.open(settings.database_url, retention_days=settings.retention_days)
    try:
        report = await build_report(
            store,
            conversation.kb,
            since=args.since,
            lang=settings.default_lang,
            tz=tz,
            index=conversation.index,
        )
    finally:
        await store.close()
    if args.knowledge is None and settings.knowledge_dir is None and _is_bundled(conversation.kb):
        # Neither --knowledge, POLICYBOT_KNOWLEDGE nor ./knowledge: the report would show HR's entries
        # as removed and point the paste targets into the installed package.
        if report.unknown_entries:
            raise ConfigError(
                "the questions logged were answered from entries the default guidelines do not have "
                f"({', '.join(report.unknown_entries[:3])}…): give your knowledge folder with --knowledge "
                "or POLICYBOT_KNOWLEDGE"
            )
        print(f"policybot: using the default guidelines installed with policybot ({report.knowledge}); "
              "give --knowledge for your own folder", file=sys.stderr)  # fmt: skip
    text = render(report, args.format)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {args.out}: {exc.strerror or exc}") from exc
    print(f"{args.out}: {report.total} questions, {len(report.gaps)} unanswered groups ({args.format})")
    return 0


def _is_bundled(kb: KnowledgeBase) -> bool:
    """Whether `kb` is the default guidelines installed with policybot."""
    from bot.knowledge_loader import default_knowledge_dir

    return Path(kb.source_dir).resolve() == default_knowledge_dir().resolve()
