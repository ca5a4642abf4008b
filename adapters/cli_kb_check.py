"""`policybot kb check`: what HR runs before publishing an edit.

It loads the folder as the bot would (every problem with file and line), checks each file against the
JSON Schema editors use, and self-tests the knowledge base that loads: examples the bot would route to
another entry, answers not reviewed for a year, and how sure the bot is, fitted on the knowledge base.
The index it builds is kept for the next `policybot ask` (bot/index_cache.py), and read back when the
files have not changed since the last check.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path

from adapters.cli_commands import fit_cache_dir
from bot.config import Settings
from bot.errors import ConfigError, KnowledgeError, Problem
from bot.index_cache import load_indexed
from bot.knowledge import KnowledgeBase
from bot.knowledge_loader import resolve_knowledge_dir
from bot.yaml_files import off_the_loop


def self_test(kb: KnowledgeBase, today: date | None = None) -> list[Problem]:
    """Warnings about a knowledge base that loads (see `bot.knowledge_check`): never errors."""
    from bot.knowledge_check import self_test as check

    return check(kb, today=today)


def folder_to_check(given: Path | None) -> Path | None:
    """The folder `kb check` loads: HR often names the file they just edited, and the bot loads (and
    merges) its whole folder."""
    if given is not None and given.is_file():
        print(f"{given} is a file: checking its folder, {given.parent}, as the bot loads it", file=sys.stderr)
        return given.parent
    if given is not None and not given.exists():
        raise ConfigError(
            f"{given} does not exist: give the knowledge folder, e.g. policybot kb check knowledge"
        )
    return given


async def cmd_kb_check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.schema import schema_problems  # jsonschema is only needed here

    directory = resolve_knowledge_dir(folder_to_check(args.directory) or settings.knowledge_dir)
    # The JSON Schema editors use: its findings agree with the loader's (tests hold them to it), so
    # one the loader already reported at the same line is not printed twice.
    schema = await schema_problems(directory)
    try:  # the index is kept for the next `ask` (bot/index_cache.py), or read back when nothing changed
        cache = fit_cache_dir()
        kb, index = await off_the_loop(lambda: load_indexed(directory, cache), "policybot-knowledge-load")
    except KnowledgeError as exc:
        located = {(p.file, p.line) for p in exc.problems if p.severity == "error"}
        extra = [p for p in schema if p.severity != "error" or (p.file, p.line) not in located]
        for problem in [*exc.problems, *extra]:
            print(problem, file=sys.stderr)
        errors = sum(p.severity == "error" for p in [*exc.problems, *extra])
        print(f"\n{directory}: {errors} error(s) — the bot would keep serving its previous knowledge base.")
        return 1
    from bot.knowledge_check import blocking
    from bot.knowledge_check import self_test as check

    problems = [*kb.warnings, *schema, *await asyncio.to_thread(check, kb, index)]
    for problem in problems:
        print(problem, file=sys.stderr)
    errors = len(blocking(problems))
    warnings = len(problems) - errors
    questions = sum(len(q) for e in kb.entries.values() for q in e.questions.values())
    languages = ", ".join(kb.languages)
    print(
        f"{directory}: {len(kb.entries)} entries, {questions} example questions, {len(kb.tips)} tips, "
        f"languages {languages}, version {kb.version}: {errors} error(s), {warnings} warning(s)"
    )
    print(f"How sure the bot is, fitted on this knowledge base: {index.fit.summary()}.")
    return 1 if errors else 0
