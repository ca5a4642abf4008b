"""`policybot ask` reads the last index back when nothing changed, and never a stale or foreign one."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from bot.errors import KnowledgeError
from bot.index_cache import KEEP, Building, load_indexed, main, prebuilt, snapshot_name
from tests.conftest import ENTRIES, write_kb

QUESTION = "Can I add my manager on Facebook?"


def snapshots(cache: Path) -> list[Path]:
    return sorted(cache.glob("index-*.pickle"))


def answer(directory: Path, cache: Path | None) -> str:
    kb, index = load_indexed(directory, cache)
    found = index.match(QUESTION, lang="en").answer_id
    return kb.entries[found].answer["en"] if found else "(no answer)"


def test_the_second_ask_of_an_unchanged_folder_reads_the_snapshot(tiny_kb_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first_kb, _ = load_indexed(tiny_kb_dir, cache)
    [snapshot] = snapshots(cache)
    # What the snapshot holds is what is served: swap in another knowledge base's to see it.
    other = write_kb(tmp_path / "other", ENTRIES.replace("Yes, you may", "Served from the snapshot"))
    snapshot.write_bytes(pickle.dumps(load_indexed(other, None)))

    kb, index = load_indexed(tiny_kb_dir, cache)

    assert kb.version != first_kb.version
    assert kb.entries["friend-manager"].answer["en"].startswith("Served from the snapshot")
    assert index.match(QUESTION, lang="en").answer_id == "friend-manager"


def test_an_edit_is_never_answered_from_the_snapshot_before_it(tiny_kb_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    entries = tiny_kb_dir / "entries.yaml"
    assert answer(tiny_kb_dir, cache).startswith("Yes, you may")

    entries.write_text(
        entries.read_text(encoding="utf-8").replace("Yes, you may", "Edited"), encoding="utf-8"
    )
    assert answer(tiny_kb_dir, cache).startswith("Edited")

    entries.write_text(
        entries.read_text(encoding="utf-8").replace("Edited", "Yes, you may"), encoding="utf-8"
    )
    assert answer(tiny_kb_dir, cache).startswith("Yes, you may")  # the first snapshot again
    assert len(snapshots(cache)) == 2


def test_a_new_file_is_a_new_snapshot(tiny_kb_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_indexed(tiny_kb_dir, cache)
    (tiny_kb_dir / "more.yaml").write_text("synonyms:\n  selfie: [snapshot]\n", encoding="utf-8")

    kb, _ = load_indexed(tiny_kb_dir, cache)

    assert kb.synonyms["selfie"] == ("snapshot",)
    assert len(snapshots(cache)) == 2


def test_a_corrupt_snapshot_is_ignored_and_written_again(tiny_kb_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_indexed(tiny_kb_dir, cache)
    [snapshot] = snapshots(cache)
    good = snapshot.read_bytes()
    snapshot.write_bytes(good[: len(good) // 2])

    assert answer(tiny_kb_dir, cache).startswith("Yes, you may")
    kb, _ = pickle.loads(snapshot.read_bytes())
    assert kb.version == pickle.loads(good)[0].version


def test_a_snapshot_others_may_write_is_never_read(tiny_kb_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_indexed(tiny_kb_dir, cache)
    [snapshot] = snapshots(cache)
    other = write_kb(tmp_path / "other", ENTRIES.replace("Yes, you may", "Planted"))
    snapshot.write_bytes(pickle.dumps(load_indexed(other, None)))
    os.chmod(snapshot, 0o666)

    assert answer(tiny_kb_dir, cache).startswith("Yes, you may")


def test_something_else_under_the_snapshot_s_name_is_ignored(tiny_kb_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_indexed(tiny_kb_dir, cache)
    [snapshot] = snapshots(cache)
    snapshot.write_bytes(pickle.dumps({"not": "an index"}))

    assert answer(tiny_kb_dir, cache).startswith("Yes, you may")


def test_a_knowledge_base_with_errors_is_reported_and_never_kept(tiny_kb_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    entries = tiny_kb_dir / "entries.yaml"
    entries.write_text(
        entries.read_text(encoding="utf-8").replace("  - id: workplace-photos", "  - id: Bad Id")
    )

    with pytest.raises(KnowledgeError, match="characters ids cannot have"):
        load_indexed(tiny_kb_dir, cache)
    assert snapshots(cache) == []


def test_only_the_newest_snapshots_are_kept(tiny_kb_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    entries = tiny_kb_dir / "entries.yaml"
    for version in range(KEEP + 2):
        entries.write_text(ENTRIES.replace("Yes, you may", f"Version {version}"), encoding="utf-8")
        load_indexed(tiny_kb_dir, cache)

    assert len(snapshots(cache)) == KEEP
    assert answer(tiny_kb_dir, cache).startswith(f"Version {KEEP + 1}")


def test_without_a_cache_folder_nothing_is_written(tiny_kb_dir: Path, tmp_path: Path) -> None:
    assert answer(tiny_kb_dir, None).startswith("Yes, you may")
    assert list(tmp_path.rglob("*.pickle")) == []


def test_the_folder_named_another_way_is_another_snapshot(
    tiny_kb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files' paths in the knowledge base are as given: what kb check prints must say them so."""
    cache = tmp_path / "cache"
    monkeypatch.chdir(tiny_kb_dir.parent)
    relative, _ = load_indexed(Path(tiny_kb_dir.name), cache)

    absolute, _ = load_indexed(tiny_kb_dir, cache)

    assert relative.entries["friend-manager"].file == str(Path(tiny_kb_dir.name) / "entries.yaml")
    assert absolute.entries["friend-manager"].file == str(tiny_kb_dir / "entries.yaml")
    assert len(snapshots(cache)) == 2


def test_the_warnings_and_entries_read_back_are_the_ones_loaded(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    folder = write_kb(tmp_path / "kb")
    (folder / "more.yaml").write_text(
        "entries:\n  - id: twice\n    title: {en: Twice}\n    answer: {en: Once is enough.}\n"
        "    questions:\n      en: [Can I post photos twice?, Can I post photos twice?]\n",
        encoding="utf-8",
    )
    loaded, _ = load_indexed(folder, cache)
    assert len(snapshots(cache)) == 1

    read_back, _ = load_indexed(folder, cache)

    assert any("listed twice" in problem.message for problem in loaded.warnings)
    assert read_back.warnings == loaded.warnings
    assert read_back.entries == loaded.entries


def test_serve_s_first_start_has_the_snapshot_built_by_a_process_of_its_own(
    tiny_kb_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    building = Building.start(tiny_kb_dir, cache)

    assert building is not None and building.wait()
    [snapshot] = snapshots(cache)  # written by the other process, before this one read anything
    kb, index = load_indexed(tiny_kb_dir, cache, building=building)
    assert kb.version == pickle.loads(snapshot.read_bytes())[0].version
    assert index.match(QUESTION, lang="en").answer_id == "friend-manager"


def test_nothing_is_built_apart_when_the_snapshot_is_there_or_nowhere_to_go(
    tiny_kb_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    assert Building.start(tiny_kb_dir, None) is None
    assert Building.start(tmp_path / "no such folder", cache) is None  # loading it says what is wrong
    load_indexed(tiny_kb_dir, cache)

    assert Building.start(tiny_kb_dir, cache) is None


def test_a_folder_with_errors_is_reported_by_the_serving_process_itself(
    tiny_kb_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    entries = tiny_kb_dir / "entries.yaml"
    entries.write_text(
        entries.read_text(encoding="utf-8").replace("  - id: workplace-photos", "  - id: Bad Id")
    )
    building = Building.start(tiny_kb_dir, cache)

    assert building is not None and not building.wait()
    name = snapshot_name(tiny_kb_dir, cache)
    assert name is not None and prebuilt(tiny_kb_dir, cache, name) is None
    with pytest.raises(KnowledgeError, match="characters ids cannot have"):
        load_indexed(tiny_kb_dir, cache, building=building)
    assert snapshots(cache) == []


def test_an_edit_made_while_the_snapshot_was_built_is_loaded_as_it_is_now(
    tiny_kb_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    building = Building.start(tiny_kb_dir, cache)
    entries = tiny_kb_dir / "entries.yaml"
    entries.write_text(
        entries.read_text(encoding="utf-8").replace("Yes, you may", "Edited"), encoding="utf-8"
    )

    kb, _ = load_indexed(tiny_kb_dir, cache, building=building)

    assert kb.entries["friend-manager"].answer["en"].startswith("Edited")


def test_no_process_is_started_for_a_cache_folder_others_may_write(tiny_kb_dir: Path, tmp_path: Path) -> None:
    """Its snapshot could never be read back: the serving process builds, once, as without a cache."""
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chmod(cache, 0o777)

    assert Building.start(tiny_kb_dir, cache) is None
    assert snapshot_name(tiny_kb_dir, cache) is None
    assert snapshots(cache) == []


def test_no_process_is_started_for_a_cache_folder_that_cannot_be_made(
    tiny_kb_dir: Path, tmp_path: Path
) -> None:
    """The container image's user has no home: its default cache folder cannot be made. The serving
    process then builds once, itself, instead of after a process that built what it could not keep."""
    not_a_folder = tmp_path / "home"
    not_a_folder.write_text("a file where the home folder would be", encoding="utf-8")
    cache = not_a_folder / ".cache" / "policybot"

    assert Building.start(tiny_kb_dir, cache) is None
    assert snapshot_name(tiny_kb_dir, cache) is None
    assert answer(tiny_kb_dir, cache).startswith("Yes, you may")


def test_the_builder_fails_when_it_could_not_keep_the_snapshot(tiny_kb_dir: Path, tmp_path: Path) -> None:
    """So the serving process loads the folder itself at once, instead of looking for a snapshot."""
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chmod(cache, 0o777)  # others may write there: nothing is kept in it

    assert main([os.fspath(tiny_kb_dir), os.fspath(cache)]) == 1
    assert snapshots(cache) == []
    os.chmod(cache, 0o700)
    assert main([os.fspath(tiny_kb_dir), os.fspath(cache)]) == 0
    assert len(snapshots(cache)) == 1


def test_a_bot_folder_in_the_working_folder_cannot_stand_in_for_the_builder(
    tiny_kb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    impostor = tmp_path / "cwd" / "bot"
    impostor.mkdir(parents=True)
    (impostor / "__init__.py").write_text("", encoding="utf-8")
    (impostor / "index_cache.py").write_text("raise SystemExit(0)  # builds nothing\n", encoding="utf-8")
    monkeypatch.chdir(impostor.parent)
    cache = tmp_path / "cache"

    building = Building.start(tiny_kb_dir, cache)

    assert building is not None and building.wait()
    assert len(snapshots(cache)) == 1  # ours ran
