"""`policybot kb check`: what HR runs before (or after) saving — errors stop the bot from loading an
edit; warnings (stale reviews, untranslated answers, examples in two entries) do not."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from adapters import cli
from adapters.cli_kb_check import cmd_kb_check, self_test
from bot.config import Settings
from bot.knowledge_loader import load_knowledge
from bot.schema import schema_path


async def kb_check(directory: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    args = cli.build_parser().parse_args(["kb", "check", str(directory)])
    code = await cmd_kb_check(args, Settings())
    out = capsys.readouterr()
    return code, out.err.splitlines(), out.out


def edit(directory: Path, old: str, new: str, name: str = "entries.yaml") -> None:
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


async def test_a_clean_folder_has_no_findings(tiny_kb_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, findings, summary = await kb_check(tiny_kb_dir, capsys)

    assert code == 0
    assert findings == []
    assert "0 error(s), 0 warning(s)" in summary


async def test_an_answer_reviewed_more_than_a_year_ago_is_a_warning(
    tiny_kb_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(tiny_kb_dir, "reviewed: 2026-11-01", "reviewed: 2020-01-31")

    code, findings, summary = await kb_check(tiny_kb_dir, capsys)

    assert code == 0  # a warning: the bot loads it
    assert findings == [
        f"{tiny_kb_dir / 'entries.yaml'}:2: warning [friend-manager]: last reviewed 2020-01-31, more than "
        "12 months ago — review the answer and update 'reviewed'"
    ]
    assert "0 error(s), 1 warning(s)" in summary


async def test_stale_means_more_than_365_days(tiny_kb_dir: Path) -> None:
    kb = await load_knowledge(tiny_kb_dir)  # friend-manager was reviewed 2026-11-01

    def stale(today: date) -> list[str]:
        return [p.entry_id or "" for p in self_test(kb, today=today) if "last reviewed" in p.message]

    assert stale(date(2027, 11, 1)) == []
    assert stale(date(2027, 11, 2)) == ["friend-manager"]


async def test_an_answer_missing_in_a_language_is_a_warning(
    tiny_kb_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(tiny_kb_dir, "      nb: Ja, det kan du — men du må aldri. Du kan gjerne takke nei.\n", "")

    code, findings, summary = await kb_check(tiny_kb_dir, capsys)

    assert code == 0
    assert findings == [
        f"{tiny_kb_dir / 'entries.yaml'}:16:7: warning [friend-manager]: answer is missing in Norwegian (nb) "
        "— add a line 'nb: …' under it; until then the bot answers in English"
    ]
    assert "0 error(s), 1 warning(s)" in summary


async def test_a_title_missing_in_a_language_is_a_warning_that_falls_back(
    tiny_kb_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(tiny_kb_dir, "      nb: Legge til lederen din i sosiale medier\n", "")

    code, findings, summary = await kb_check(tiny_kb_dir, capsys)

    assert code == 0  # never a refusal: the bot shows the English title
    assert findings == [
        f"{tiny_kb_dir / 'entries.yaml'}:4:7: warning [friend-manager]: title is missing in Norwegian (nb) "
        "— add a line 'nb: …' under it; until then the bot shows it in English"
    ]
    assert "0 error(s), 1 warning(s)" in summary


async def test_an_example_question_in_two_entries_is_a_warning(
    tiny_kb_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(tiny_kb_dir, "        - is filming at work allowed", "        - Can I add my manager on Facebook?")

    _, findings, _ = await kb_check(tiny_kb_dir, capsys)

    # (the self-test then also finds that the copy routes to the other entry: an error of its own)
    entries = tiny_kb_dir / "entries.yaml"
    duplicated = [f for f in findings if "also an example of" in f]
    assert duplicated == [
        f"{entries}:31:11: warning [workplace-photos]: the question 'Can I add my manager on Facebook?' "
        f"is also an example of 'friend-manager' ({entries}:8) — keep it in the one entry that answers it"
    ]


async def test_kb_check_tells_hr_when_the_editors_copy_of_the_schema_is_missing_or_old(
    tiny_kb_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(tiny_kb_dir, "entries:", "# yaml-language-server: $schema=./knowledge.schema.json\nentries:")

    code, findings, _ = await kb_check(tiny_kb_dir, capsys)
    assert code == 0
    assert [f.split(": ", 2)[2] for f in findings] == [
        "the files refer to ./knowledge.schema.json, which is not in the folder (editors check against it) "
        f"— copy {schema_path()} into the folder"
    ]

    (tiny_kb_dir / "knowledge.schema.json").write_text("{}", encoding="utf-8")
    _, findings, _ = await kb_check(tiny_kb_dir, capsys)
    assert "differs from the one of this policybot version" in findings[0]

    shutil.copy(schema_path(), tiny_kb_dir / "knowledge.schema.json")
    assert (await kb_check(tiny_kb_dir, capsys))[1] == []
