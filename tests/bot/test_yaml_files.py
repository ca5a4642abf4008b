"""Each file is read safely: tabs, broken syntax, anchors, unsafe tags, oversized files and folders named
like files are refused with their place, never parsed into something HR did not mean."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from bot.errors import KnowledgeError, Problem
from bot.knowledge_loader import load_knowledge
from bot.schema import schema_problems
from bot.yaml_files import MAX_FILE_BYTES, NotReadable, read_regular
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


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("!!python/name:os.system\n", 1, "the YAML tag '!!python/name:os.system' is not supported"),
        ("synonyms: {boss: [!!binary aGk=]}\n", 1, "the YAML tag '!!binary' is not supported"),
        ("synonyms:\n  boss: [chief,*w]\n", 2, "anchors and aliases (&name / *name) are not supported"),
        ("synonyms: {boss:\n  &w [chief]}\n", 2, "anchors and aliases (&name / *name) are not supported"),
    ],
)
async def test_a_tag_or_anchor_at_the_start_or_after_a_flow_indicator_is_found_too(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    directory = write_kb(tmp_path / "kb")
    (directory / "words.yaml").write_text(text, encoding="utf-8")

    problems = await problems_in(directory)

    assert [(Path(p.file).name, p.line, p.message) for p in problems][:1] == [("words.yaml", line, message)]


async def test_exclamation_marks_ampersands_and_stars_in_text_are_just_text(tmp_path: Path) -> None:
    directory = write_kb(tmp_path / "kb")
    (directory / "words.yaml").write_text(
        "synonyms:\n  q&a: [Q&A, don't!, 5*5, a*b*c, \"*quoted*\", 'it is !important']\n", encoding="utf-8"
    )

    kb = await load_knowledge(directory)

    assert kb.synonyms["q&a"] == ("q&a", "don't!", "5*5", "a*b*c", "*quoted*", "it is !important")


async def test_a_file_of_more_than_200000_items_is_refused(tmp_path: Path) -> None:
    directory = write_kb(tmp_path / "kb")
    (directory / "many.yaml").write_text("synonyms: {a: [" + "x," * 200_000 + "]}\n", encoding="utf-8")

    problems = await problems_in(directory)

    assert [(Path(p.file).name, p.message) for p in problems] == [
        ("many.yaml", "the file has more than 200000 items")
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
    open_file = os.open

    def removed_just_before(path: Any, flags: int, *args: Any) -> int:
        if Path(path) == gone:  # listed and sized, then an editor or a deploy removed it
            gone.unlink()
        return open_file(path, flags, *args)

    monkeypatch.setattr(os, "open", removed_just_before)

    [problem] = await problems_in(tiny_kb_dir)

    assert problem.file == str(gone)
    assert problem.message == "the file could not be read (No such file or directory)"


# ------------------------------------------------------------------ files that are not files


async def test_a_named_pipe_is_a_problem_with_its_path_not_a_hang(tiny_kb_dir: Path) -> None:
    """Opening a FIFO for reading waits for a writer: the loader never opens one."""
    os.mkfifo(tiny_kb_dir / "x.yaml")

    async with asyncio.timeout(5):
        [problem] = await problems_in(tiny_kb_dir)

    assert problem.file == str(tiny_kb_dir / "x.yaml")
    assert problem.message == "this is a named pipe (FIFO), not a regular file; it was not read"
    assert problem.fix == "replace it with an ordinary text file, or remove it"


async def test_a_link_to_a_device_is_a_problem_and_nothing_is_read_from_it(tiny_kb_dir: Path) -> None:
    """`stat` says 0 bytes for /dev/zero, which never ends: the size check alone would read forever."""
    (tiny_kb_dir / "zero.yaml").symlink_to("/dev/zero")
    (tiny_kb_dir / "null.yml").symlink_to("/dev/null")

    async with asyncio.timeout(5):
        problems = await problems_in(tiny_kb_dir)

    assert [(Path(p.file).name, p.message) for p in problems] == [
        ("zero.yaml", "this is a device (through a symbolic link), not a regular file; it was not read"),
        ("null.yml", "this is a device (through a symbolic link), not a regular file; it was not read"),
    ]


async def test_a_socket_is_a_problem(tiny_kb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tiny_kb_dir)  # a relative name: socket paths are limited to ~100 characters
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("s.yaml")

        [problem] = await problems_in(tiny_kb_dir)

    assert problem.message == "this is a socket, not a regular file; it was not read"


async def test_a_link_to_a_regular_file_is_read_as_before(tmp_path: Path) -> None:
    """Kubernetes mounts a ConfigMap as symbolic links to the real files: those must keep working."""
    real = write_kb(tmp_path / "real")
    linked = tmp_path / "linked"
    linked.mkdir()
    for name in ("entries.yaml", "messages.yaml"):
        (linked / name).symlink_to(real / name)

    assert (await load_knowledge(linked)).version == (await load_knowledge(real)).version


def test_no_read_takes_more_than_the_limit_plus_one_byte(tmp_path: Path) -> None:
    """A file that grows between being sized and being read is cut off, not read to its end."""
    path = tmp_path / "growing.yaml"
    path.write_bytes(b"x" * 10)

    assert read_regular(path, limit=10) == b"x" * 10
    path.write_bytes(b"x" * 11)
    with pytest.raises(NotReadable, match=r"the file is 11 bytes \(at most 10\)"):
        read_regular(path, limit=10)


async def test_the_schema_check_does_not_open_a_pipe_either(tiny_kb_dir: Path) -> None:
    """`kb check` also reads each file's first line for the editors' `$schema` reference."""
    os.mkfifo(tiny_kb_dir / "x.yaml")
    os.mkfifo(tiny_kb_dir / "knowledge.schema.json")
    (tiny_kb_dir / "entries.yaml").write_text(
        "# yaml-language-server: $schema=./knowledge.schema.json\n" + ENTRIES, encoding="utf-8"
    )

    async with asyncio.timeout(5):
        problems = await schema_problems(tiny_kb_dir)

    assert [p.severity for p in problems] == ["warning"]  # the editors' copy is "not in the folder"
