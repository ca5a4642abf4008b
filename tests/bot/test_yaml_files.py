"""Each file is read safely: tabs, broken syntax, anchors, unsafe tags, oversized files and folders named
like files are refused with their place, never parsed into something HR did not mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import KnowledgeError, Problem
from bot.knowledge_loader import load_knowledge
from bot.yaml_files import MAX_FILE_BYTES
from tests.conftest import ENTRIES, write_kb


async def problems_in(directory: Path) -> list[Problem]:
    with pytest.raises(KnowledgeError) as caught:
        await load_knowledge(directory)
    return caught.value.problems


async def test_tab_indentation_is_named_with_line_and_column(tmp_path: Path) -> None:
    directory = write_kb(tmp_path / "kb", ENTRIES.replace("    owner: HR", "\towner: HR"))

    [problem] = await problems_in(directory)

    assert (problem.line, problem.column) == (21, 1)
    assert problem.message == "the line is indented with a tab"


async def test_broken_yaml_syntax_points_at_the_line(tmp_path: Path) -> None:
    directory = write_kb(tmp_path / "kb", ENTRIES.replace("    owner: HR", "    owner: HR: Team: [unclosed"))

    [problem] = await problems_in(directory)

    assert problem.line == 21 and problem.file.endswith("entries.yaml")


async def test_aliases_are_refused_so_a_billion_laughs_cannot_expand(tmp_path: Path) -> None:
    bomb = "synonyms:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb += f"  {level}: &{level} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
    directory = write_kb(tmp_path / "kb")
    (directory / "bomb.yaml").write_text(bomb, encoding="utf-8")

    problems = await problems_in(directory)

    assert any("anchors and aliases" in p.message for p in problems)


async def test_oversized_files_are_refused_without_being_parsed(tmp_path: Path) -> None:
    directory = write_kb(tmp_path / "kb")
    (directory / "huge.yaml").write_text("# " + "x" * MAX_FILE_BYTES, encoding="utf-8")

    problems = await problems_in(directory)

    assert any(p.file.endswith("huge.yaml") and "bytes (at most" in p.message for p in problems)


async def test_an_anchor_and_alias_of_a_single_word_are_refused_too(tmp_path: Path) -> None:
    directory = write_kb(tmp_path / "kb")
    (directory / "words.yaml").write_text("synonyms:\n  boss: [&w chief]\n  head: [*w]\n", encoding="utf-8")

    [problem] = await problems_in(directory)

    assert (problem.line, problem.column) == (2, 10)  # the anchor: one problem says it for the file
    assert problem.message == "anchors and aliases (&name / *name) are not supported"


async def test_unsafe_yaml_tags_are_rejected_not_executed(tmp_path: Path) -> None:
    """Each value has the shape its field wants: only the tags make these files wrong."""
    directory = write_kb(tmp_path / "kb")
    (directory / "evil.yaml").write_text(
        "synonyms: !!python/object/apply:os.system {zzz: [echo pwned]}\n"
        "out_of_scope:\n  en:\n    - !custom how do I reset my password\n"
        "    - !!str a core tag is fine\n    - ! so is the non-specific one\n",
        encoding="utf-8",
    )

    problems = await problems_in(directory)

    assert [(Path(p.file).name, p.line, p.message, p.fix) for p in problems] == [
        (
            "evil.yaml",
            1,
            "the YAML tag '!!python/object/apply:os.system' is not supported",
            "if '!!python/object/apply:os.system' is meant as text, put the whole text in quotes; "
            "otherwise remove the tag",
        ),
        (
            "evil.yaml",
            4,
            "the YAML tag '!custom' is not supported",
            "if '!custom' is meant as text, put the whole text in quotes; otherwise remove the tag",
        ),
    ]


async def test_a_folder_named_like_a_yaml_file_is_a_problem_not_a_crash(tiny_kb_dir: Path) -> None:
    (tiny_kb_dir / "old.yaml").mkdir()

    [problem] = await problems_in(tiny_kb_dir)

    assert problem.file == str(tiny_kb_dir / "old.yaml")
    assert problem.message == "this is a folder, not a file"
    assert problem.fix == "rename it so its name does not end in .yaml or .yml"


async def test_a_file_removed_while_the_folder_is_read_is_named(
    tiny_kb_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tiny_kb_dir / "gone.yaml"
    gone.write_text("synonyms: {}\n", encoding="utf-8")
    read_bytes = Path.read_bytes

    def removed_just_before(path: Path) -> bytes:
        if path == gone:  # listed and sized, then an editor or a deploy removed it
            path.unlink()
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", removed_just_before)

    [problem] = await problems_in(tiny_kb_dir)

    assert problem.file == str(gone)
    assert problem.message == "the file could not be read (No such file or directory)"
