"""`kb check` and a live reload only warn about a knowledge base that loads, in HR's words."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

from bot.knowledge_check import blocking, changed, self_test
from bot.knowledge_loader import load_knowledge
from tests.conftest import write_kb


async def test_after_a_reload_the_advice_points_at_the_entry_hr_changed(tiny_kb_dir: Path) -> None:
    before = await load_knowledge(tiny_kb_dir)
    entries = tiny_kb_dir / "entries.yaml"
    entries.write_text(
        entries.read_text(encoding="utf-8").replace(
            "        - is filming at work allowed",
            "        - Should I accept a friend request from my boss on Facebook?",
        ),
        encoding="utf-8",
    )
    after = await load_knowledge(tiny_kb_dir)

    assert changed(after, before) == {"workplace-photos"}
    [problem] = self_test(after, previous=before, today=date(2026, 12, 1))
    assert problem.severity == "warning" and problem.entry_id == "workplace-photos"
    assert "examples of 'friend-manager' and 'workplace-photos' are confusable" in problem.message
    assert problem.fix.startswith("you changed 'workplace-photos': its examples now read like those of")
    assert blocking([problem]) == []  # advice never keeps the edit out


async def test_an_edit_that_leaves_a_confusion_as_it_was_is_not_blamed_for_it(tiny_kb_dir: Path) -> None:
    entries = tiny_kb_dir / "entries.yaml"
    text = entries.read_text(encoding="utf-8").replace(
        "        - is filming at work allowed",
        "        - Should I accept a friend request from my boss on Facebook?",
    )
    entries.write_text(text, encoding="utf-8")
    confused = await load_knowledge(tiny_kb_dir)
    answer = confused.entries["workplace-photos"].answer["en"]
    entries.write_text(text.replace(answer, "Reworded, " + answer), encoding="utf-8")
    reworded = await load_knowledge(tiny_kb_dir)  # HR rewords the answer, and nothing else

    assert changed(reworded, confused) == {"workplace-photos"}
    assert self_test(reworded, previous=confused, today=date(2026, 12, 1)) == []  # the reload says nothing
    [problem] = self_test(reworded, today=date(2026, 12, 1))  # kb check still lists the pair
    assert "examples of 'friend-manager' and 'workplace-photos' are confusable" in problem.message


async def test_entries_hr_did_not_touch_are_not_reported_again(tmp_path: Path) -> None:
    kb = await load_knowledge(write_kb(tmp_path / "kb"))
    only_tips = replace(kb, tips=())

    assert changed(only_tips, kb) == set()
    assert self_test(only_tips, previous=kb, today=date(2026, 12, 1)) == []
