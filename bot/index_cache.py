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

`policybot serve` builds a snapshot that is not there yet in a process of its own (`Building`, which
runs `python -m bot.index_cache FOLDER CACHE`), at start-up beside its own imports and on every reload
(`prebuilt`), and reads it back. The build's garbage (its caches, its freed temporaries, scattered
between what lasts) then never lives in the serving process: after a first start it idles as low as
after a restart (shipped knowledge base: 94 MiB, not 107; 10 000 entries: 191, not 213), and answers
asked during a reload of 10 000 entries wait at most 0.27 s, not 0.45 (bench figures in
docs/development.md). The price: the snapshot is read back after it is written (a first start of
10 000 entries took 0.1-1.7 s longer in our runs), and a reload keeps a snapshot on disk (`KEEP` of them).
When the other process fails, for errors in the files or anything else, the serving process loads the
folder itself, and so says what is wrong exactly as before.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import pickle
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.errors import PolicybotError
from bot.gc_pause import gc_paused
from bot.knowledge import KnowledgeBase
from bot.knowledge_loader import assemble, folder_files
from bot.matching import Index, give_back_memory
from bot.yaml_files import NotReadable, read_raw

log = logging.getLogger(__name__)

FORMAT = b"policybot-index-1"  # changes when what a snapshot holds does
KEEP = 4  # snapshots kept: a few knowledge folders or versions in turn
LIBRARIES = ("numpy", "rapidfuzz", "yaml", "Stemmer", "stop_words")  # what the index is built with
PREFIX, SUFFIX = "index-", ".pickle"
# Seconds a build in a process of its own may take (10 000 entries: about 5 s) before it is stopped.
BUILD_TIMEOUT = 300.0


class Building:
    """A snapshot being built by a process of its own (see the module's docstring)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._started = time.monotonic()

    @classmethod
    def start(cls, directory: Path, cache: Path | None) -> Building | None:
        """Start building the snapshot of `directory` in `cache`; None when there is nothing to build
        (a snapshot of these files is there, or no cache folder), or no process could be started."""
        name = snapshot_name(directory, cache) if cache is not None else None
        if cache is None or name is None or (cache / name).is_file():
            return None
        return cls.launch(directory, cache)

    @classmethod
    def launch(cls, directory: Path, cache: Path) -> Building | None:
        """The process building the snapshot of `directory` in `cache`, started; None if it could not be."""
        if not sys.executable:  # an embedded interpreter: no `python` to start
            return None
        # This very `bot` package, whatever the working folder holds (-P: no `bot/` there can shadow it).
        here = os.fspath(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
        }
        command = [sys.executable, "-P", "-m", "bot.index_cache", os.fspath(directory), os.fspath(cache)]
        try:
            # Its output is not needed: when it fails, the serving process builds, and says why itself.
            process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            log.debug("building the index in this process: no process of its own (%s)", exc)
            return None
        return cls(process)

    def wait(self) -> bool:
        """Wait for it; whether it built the snapshot (one that takes too long is stopped, and the
        caller builds it instead)."""
        try:
            built = self._process.wait(timeout=BUILD_TIMEOUT) == 0
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            built = False
        log.debug("index snapshot build %s after %.2f s", "done" if built else "failed",
                  time.monotonic() - self._started)  # fmt: skip
        return built


def prebuilt(directory: Path, cache: Path, name: str) -> tuple[KnowledgeBase, Index] | None:
    """The knowledge base in `directory` and its index from the snapshot `name` (`snapshot_name`) in
    `cache`, built first by a process of its own if it is not there; None when that process could not
    build it (errors in the files, among other reasons): the caller then loads the folder itself, and
    learns why. Blocking (a build is stopped after BUILD_TIMEOUT)."""
    kept = _read(cache / name)
    if kept is None:
        building = Building.launch(directory, cache)
        if building is None or not building.wait():
            return None
        kept = _read(cache / name)  # (None if the files were edited meanwhile: the caller loads them)
    return kept


def load_indexed(
    directory: Path, cache: Path | None, *, building: Building | None = None
) -> tuple[KnowledgeBase, Index]:
    """The knowledge base in `directory` and its index: from a snapshot in `cache` when one was made
    from the same files by the same code (or `building` has made it), else loaded and built (and kept
    there for next time). Raises KnowledgeError as `load_knowledge` does. Blocking: run it off the loop."""
    files = folder_files(directory)
    raws = [read_raw(path) for path in files]
    name = _name(directory, files, raws) if cache is not None else None
    if cache is not None and name is not None:
        kept = _read(cache / name)
        if kept is None and building is not None and building.wait():
            kept = _read(cache / name)  # (files edited meanwhile: another name, built here below)
        if kept is not None:
            return kept
    kb = assemble(directory, files, raws)
    with gc_paused():  # a third faster for a large knowledge base (see bot/gc_pause.py)
        index = Index(kb, cache=cache)
    if cache is not None and name is not None:
        _write(cache, name, (kb, index))
    return kb, index


def snapshot_name(directory: Path, cache: Path) -> str | None:
    """The name the snapshot of `directory` as it is now has in `cache`; None if its files cannot all be
    read, or `cache` is a folder whose snapshots would never be read (others may write there).
    Reads the folder: may take as long as reading it does."""
    if not _usable(cache):
        return None
    try:
        files = folder_files(directory)
    except PolicybotError:  # no such folder: whoever loads it says so
        return None
    return _name(directory, files, [read_raw(path) for path in files])


def _name(directory: Path, files: list[Path], raws: list[bytes | NotReadable]) -> str | None:
    """The snapshot's file name for these files' bytes; None if one of them could not be read (the
    loader says why)."""
    contents = [raw for raw in raws if isinstance(raw, bytes)]
    if len(contents) != len(raws):
        return None
    digest = hashlib.sha256(code_digest())
    # As given too: the files' paths in the knowledge base (and in what kb check prints) are.
    digest.update(os.fsencode(directory) + b"\0" + os.fsencode(directory.resolve()) + b"\0")
    for path, content in zip(files, contents, strict=True):
        digest.update(os.fsencode(path.name) + b"\0" + content + b"\0")
    return f"{PREFIX}{digest.hexdigest()[:32]}{SUFFIX}"


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


def _usable(cache: Path) -> bool:
    """Whether snapshots can be kept in `cache`: a folder private to us, made now (private) if there is
    none. One that cannot be made (no home folder, a read-only file system: the container image's user
    has no home) keeps nothing, so no process is started to build what it could not keep."""
    if not os.path.lexists(cache):
        try:
            cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            log.debug("not keeping the index in %s: %s", cache, exc)
            return False
    if not _private(cache):
        log.debug("not keeping the index in %s: other users may write there", cache)
        return False
    return True


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
        if not _usable(cache):
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


def main(argv: list[str]) -> int:
    """`python -m bot.index_cache FOLDER CACHE`: build the snapshot (for `Building`); 0 when it is there,
    1 when it is not (errors in the files, a cache folder that cannot be written, an edit meanwhile):
    the serving process then loads the folder itself at once, without looking for it."""
    directory, cache = Path(argv[0]), Path(argv[1])
    try:
        load_indexed(directory, cache)
    except PolicybotError:  # errors in the files: the serving process loads them itself and says which
        return 1
    name = snapshot_name(directory, cache)
    return 0 if name is not None and (cache / name).is_file() else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
