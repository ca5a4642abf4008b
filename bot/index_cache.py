"""The loaded and indexed knowledge base, kept on disk for the next `policybot serve`, `ask` or `chat`.

Loading the YAML and building the index takes several times longer than reading them back: for the
shipped knowledge base, about 0.15 s of the 0.35 s an `ask` costs, against 0.02 s. A snapshot is
written after a build and used only when nothing it was built from has changed. Its name is a hash of

- the knowledge folder's path (as given, and resolved) and the name and bytes of every file the loader
  reads there, the very bytes the snapshot was then built from (read once), so an edit, a new or a
  removed file is a new name;
- this policybot's code (every file of `bot/`, the built-in sentences included), Python's version and
  the installed libraries the index depends on, so an upgrade is a new name too.

So a stale snapshot is never served. One that cannot be read back (truncated, corrupt, written by
something else) is ignored and built anew. Snapshots are pickles, which can run code when read: one is
read only when it and its folder belong to the user running policybot and nobody else may write them,
and each is written to a private temporary file first, then renamed. Only the newest few are kept.
A knowledge base with errors is never kept: the loader reports them every time.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import pickle
import stat
import sys
import tempfile
from pathlib import Path

from bot.gc_pause import gc_paused
from bot.knowledge import KnowledgeBase
from bot.knowledge_loader import assemble, folder_files
from bot.matching import Index, give_back_memory
from bot.yaml_files import read_raw

log = logging.getLogger(__name__)

FORMAT = b"policybot-index-1"  # changes when what a snapshot holds does
KEEP = 4  # snapshots kept: a few knowledge folders or versions in turn
LIBRARIES = ("numpy", "rapidfuzz", "yaml", "Stemmer", "stop_words")  # what the index is built with
PREFIX, SUFFIX = "index-", ".pickle"


def load_indexed(directory: Path, cache: Path | None) -> tuple[KnowledgeBase, Index]:
    """The knowledge base in `directory` and its index: from a snapshot in `cache` when one was made
    from the same files by the same code, else loaded and built (and kept there for next time).
    Raises KnowledgeError as `load_knowledge` does. Blocking: run it off the event loop."""
    files = folder_files(directory)
    raws = [read_raw(path) for path in files]
    contents = [raw for raw in raws if isinstance(raw, bytes)]
    name = None
    if cache is not None and len(contents) == len(raws):  # (a file it cannot read: the loader says why)
        digest = hashlib.sha256(code_digest())
        # As given too: the files' paths in the knowledge base (and in what kb check prints) are.
        digest.update(os.fsencode(directory) + b"\0" + os.fsencode(directory.resolve()) + b"\0")
        for path, content in zip(files, contents, strict=True):
            digest.update(os.fsencode(path.name) + b"\0" + content + b"\0")
        name = f"{PREFIX}{digest.hexdigest()[:32]}{SUFFIX}"
        kept = _read(cache / name)
        if kept is not None:
            return kept
    kb = assemble(directory, files, raws)
    with gc_paused():  # a third faster for a large knowledge base (see bot/gc_pause.py)
        index = Index(kb, cache=cache)
    if cache is not None and name is not None:
        _write(cache, name, (kb, index))
    return kb, index


@functools.cache
def code_digest() -> bytes:
    """Changes whenever the code a snapshot was built by does: bot/'s files, Python, the libraries."""
    digest = hashlib.sha256(FORMAT)
    package = Path(__file__).parent
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".yaml", ".json") and path.is_file():
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(sys.version.encode() + b"\0")
    for library in LIBRARIES:
        spec = importlib.util.find_spec(library)
        origin = spec.origin if spec is not None and spec.origin else ""
        try:
            info = os.stat(origin)
            digest.update(f"{library} {origin} {info.st_size} {info.st_mtime_ns}\0".encode())
        except OSError:
            digest.update(f"{library} missing\0".encode())
    return digest.digest()


def _private(path: Path) -> bool:
    """Ours alone: owned by this user, writable by nobody else (and no link to something else)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    owner = info.st_uid == os.getuid() if hasattr(os, "getuid") else True
    return owner and not stat.S_ISLNK(info.st_mode) and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read(path: Path) -> tuple[KnowledgeBase, Index] | None:
    if not (_private(path.parent) and _private(path)):
        return None
    try:
        # Streamed: the file is never in memory whole beside what it holds (a lower peak).
        with gc_paused(), path.open("rb") as handle:
            kept = pickle.load(handle)  # our own private file (see above)
    except Exception as exc:  # a snapshot that cannot be read back, whatever the reason, is rebuilt
        log.debug("ignoring the index snapshot %s: %s", path, exc)
        return None
    if (
        isinstance(kept, tuple)
        and len(kept) == 2  # the pair _write wrote
        and isinstance(kept[0], KnowledgeBase)
        and isinstance(kept[1], Index)
    ):
        return kept[0], kept[1]
    log.debug("ignoring the index snapshot %s: not a knowledge base and its index", path)
    return None


def _write(cache: Path, name: str, built: tuple[KnowledgeBase, Index]) -> None:
    try:
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(cache):
            log.debug("not keeping the index in %s: other users may write there", cache)
            return
        handle, temporary = tempfile.mkstemp(dir=cache, prefix=".index-", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(handle, "wb") as out:
                # Streamed: the snapshot of a large knowledge base is tens of MiB, never held whole.
                pickle.dump(built, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, cache / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _prune(cache, name)
        give_back_memory()  # what the pickler's memo grew (30 MiB at 10 000 entries)
    except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
        # A read-only home, a full disk, or an index that cannot be pickled: it costs time, nothing more.
        log.debug("could not keep the index in %s: %s", cache, exc)


def _prune(cache: Path, written: str) -> None:
    """Only the newest KEEP snapshots stay, the one just written among them."""
    others: list[tuple[int, Path]] = []
    for path in cache.glob(f"{PREFIX}*{SUFFIX}"):
        try:
            if path.name != written:
                others.append((path.stat().st_mtime_ns, path))
        except OSError:  # removed meanwhile by another policybot doing the same
            continue
    for _, old in sorted(others, reverse=True)[KEEP - 1 :]:
        old.unlink(missing_ok=True)
