"""Reading the knowledge base from YAML: find the folder, then load, merge and validate its files.

Every file in the folder is read with PyYAML's *safe* loader (`bot.yaml_files`) and merged by one
`KnowledgeReader`, built up layer by layer: YAML nodes to values (`bot.yaml_fields`), the entries
(`bot.knowledge_entries`), settings and languages (`bot.knowledge_settings`), the other sections
(`bot.knowledge_sections`) and the checks across files (`bot.knowledge_references`). Loading never stops
at the first mistake: it collects every problem with file, line and column, the entry it belongs to and
how to fix it, so HR can repair an edit in one go. This module finds the folder and assembles the
`KnowledgeBase` and its version (a hash of the files' bytes).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path

from bot.calibration import ANSWER_WHEN_SURE
from bot.errors import KnowledgeError, Problem
from bot.gc_pause import gc_paused
from bot.knowledge import KnowledgeBase
from bot.knowledge_references import KnowledgeReader
from bot.yaml_files import (
    MAX_FILES,
    NotReadable,
    knowledge_files,
    off_the_loop,
    parse_yaml,
    read_raw,
    read_yaml,
)


def default_knowledge_dir() -> Path:
    """The default guidelines, installed with the package (the repository's `knowledge/` folder)."""
    spec = importlib.util.find_spec("policybot_knowledge")
    # A namespace package (no __init__.py, so HR's folder holds only YAML): take its real folder.
    locations = [Path(p) for p in (spec.submodule_search_locations or []) if Path(p).is_dir()] if spec else []
    if not locations:
        raise KnowledgeError(
            [
                Problem(
                    "policybot_knowledge",
                    None,
                    None,
                    None,
                    "the default guidelines are not installed",
                    "reinstall policybot, or set POLICYBOT_KNOWLEDGE to a knowledge folder",
                )
            ]
        )
    return locations[0]


def resolve_knowledge_dir(configured: Path | None, cwd: Path | None = None) -> Path:
    """`POLICYBOT_KNOWLEDGE`, else `./knowledge` when it exists, else the installed defaults."""
    if configured is not None:
        return configured
    local = (cwd or Path.cwd()) / "knowledge"
    if local.is_dir() and any(local.glob("*.yaml")):
        return local
    return default_knowledge_dir()


async def load_knowledge(directory: Path) -> KnowledgeBase:
    """Load and validate every `*.yaml` file in `directory`; raise KnowledgeError listing all problems."""
    return await off_the_loop(lambda: _load(directory), "policybot-knowledge-load")


def _load(directory: Path) -> KnowledgeBase:
    files = folder_files(directory)
    return assemble(directory, files, [read_raw(path) for path in files])


def folder_files(directory: Path) -> list[Path]:
    """The files the loader reads in `directory`; KnowledgeError when it is no folder or has too many."""
    if not directory.is_dir():
        message, fix = "the knowledge folder does not exist", "point POLICYBOT_KNOWLEDGE at a folder"
        raise KnowledgeError([Problem(str(directory), None, None, None, message, fix)])
    files = knowledge_files(directory)
    if len(files) > MAX_FILES:
        message, fix = f"{len(files)} YAML files (at most {MAX_FILES})", "merge some files"
        raise KnowledgeError([Problem(str(directory), None, None, None, message, fix)])
    return files


def assemble(directory: Path, files: list[Path], raws: list[bytes | NotReadable]) -> KnowledgeBase:
    """The knowledge base of `directory` from its files' bytes as `read_raw` gave them: all the I/O is
    done before, so the collector can be paused (bot/gc_pause.py) and a cache can key on the same bytes."""
    reader = KnowledgeReader()
    with gc_paused():
        digest = hashlib.sha256()
        unreadable = False  # a file that could not be parsed at all
        for path, raw in zip(files, raws, strict=True):
            reader.file = str(path)
            read = parse_yaml(path, raw, reader.problems)
            if read.raw is not None:
                digest.update(path.name.encode() + b"\0" + read.raw + b"\0")
            if read.node is not None:
                reader.read_file(read.node)
            unreadable = unreadable or read.unreadable
        if not files:
            reader.file = str(directory)
            reader.add(None, None, "no .yaml files in the knowledge folder", "add the knowledge base files")
        reader.cross_check(unreadable)
        reader.fill_messages(builtin_messages())
    errors = [p for p in reader.problems if p.severity == "error"]
    if errors:
        raise KnowledgeError(reader.problems)
    return KnowledgeBase(
        entries=dict(reader.entries),
        tips=tuple(reader.tips.values()),
        messages=reader.messages,
        synonyms=reader.synonyms,
        out_of_scope={lang: tuple(texts) for lang, texts in reader.out_of_scope.items() if texts},
        version=digest.hexdigest()[:12],
        source_dir=str(directory),
        warnings=tuple(reader.problems),
        languages=reader.languages(),
        answer_when_sure=reader.answer_when_sure or ANSWER_WHEN_SURE,
    )


@functools.cache
def builtin_messages() -> Mapping[str, Mapping[str, str]]:
    """The bot's built-in sentences (bot/messages.yaml: English and Norwegian, naming no topic), for
    those HR's folder leaves out."""
    path = Path(__file__).with_name("messages.yaml")
    reader = KnowledgeReader()
    reader.file = str(path)
    read = read_yaml(path, reader.problems)
    if read.node is not None:
        reader.read_file(read.node)
    return {key: dict(texts) for key, texts in reader.messages.items()}
