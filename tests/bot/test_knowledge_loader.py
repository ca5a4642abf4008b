"""HR edits YAML; every mistake is reported at once, with file, line, entry and how to fix it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.conversation import Conversation, Message
from bot.errors import KnowledgeError, Problem
from bot.knowledge_loader import load_knowledge
from tests.conftest import ENTRIES, messages_yaml, write_kb


async def problems_in(directory: Path) -> list[Problem]:
    with pytest.raises(KnowledgeError) as caught:
        await load_knowledge(directory)
    return caught.value.problems


async def test_a_well_formed_folder_loads_every_part(tiny_kb_dir: Path) -> None:
    kb = await load_knowledge(tiny_kb_dir)

    assert list(kb.entries) == ["friend-manager", "workplace-photos"]
    entry = kb.entries["friend-manager"]
    assert entry.title["nb"] == "Legge til lederen din i sosiale medier"
    assert len(entry.questions["en"]) == 3
    assert entry.reviewed == date(2026, 11, 1)
    assert entry.source["en"] == "Guidelines 2.1"
    assert kb.entries["workplace-photos"].links[0].title_in("nb") == "Fotoregler"
    assert [t.id for t in kb.tips] == ["photo-check", "decline-ok"]
    assert kb.synonyms["manager"] == ("boss", "leader", "sjef", "leder")
    assert kb.say("fallback", "nb", hr_contact="hr@x") == "NB fallback hr@x"
    assert len(kb.version) == 12


async def test_several_files_are_merged_and_ids_must_be_unique_across_them(tiny_kb_dir: Path) -> None:
    (tiny_kb_dir / "more.yaml").write_text(ENTRIES.split("tips:")[0], encoding="utf-8")

    problems = await problems_in(tiny_kb_dir)

    duplicates = [p for p in problems if "duplicate id" in p.message]
    assert {p.entry_id for p in duplicates} == {"friend-manager", "workplace-photos"}
    assert all(p.file.endswith("more.yaml") and "entries.yaml:" in p.message for p in duplicates)


async def test_every_problem_is_reported_at_once_with_its_place_and_fix(tmp_path: Path) -> None:
    broken = (
        ENTRIES.replace("      nb: Legge til lederen din i sosiale medier\n", "")
        .replace("related: [workplace-photos]", "related: [workplace-foto]")
        .replace("reviewed: 2026-11-01", "reviewed: 1st of November")
        .replace("        - Can I post photos from work?", '        - ""')
        .replace("    tags: [facebook, manager]", "    tags: facebook")
    )
    directory = write_kb(tmp_path / "kb", broken)

    problems = await problems_in(directory)
    by_message = {p.message: p for p in problems}

    missing = by_message["title is missing in Norwegian (nb)"]  # a warning: English is shown instead
    assert (missing.file.endswith("entries.yaml"), missing.entry_id) == (True, "friend-manager")
    assert (
        missing.line == 4
        and missing.fix == "add a line 'nb: …' under it; until then the bot shows it in English"
    )
    related = by_message["related id 'workplace-foto' does not exist"]
    assert related.fix == "did you mean 'workplace-photos'?" and related.line == 18
    assert by_message["'1st of November' is not a date"].fix.startswith("write it as YYYY-MM-DD")
    assert "an item of questions (en) is empty" in by_message
    assert "tags should be a list but is 'facebook'" in by_message
    assert len([p for p in problems if p.severity == "error"]) == 4
    assert "entries.yaml:4:7: warning [friend-manager]" in str(missing)


async def test_a_misspelt_field_gets_a_did_you_mean(tmp_path: Path) -> None:
    directory = write_kb(
        tmp_path / "kb",
        ENTRIES.replace(
            "    questions:\n      en:\n        - Can I add", "    questons:\n      en:\n        - Can I add"
        ),
    )

    problems = await problems_in(directory)

    assert any(
        p.message == "unknown field 'questons' in an entry" and p.fix == "did you mean 'questions'?"
        for p in problems
    )
    assert any(p.message == "the entry has no example questions" for p in problems)


async def test_wrong_placeholders_are_errors_and_missing_sentences_are_the_built_in_ones(
    tmp_path: Path,
) -> None:
    messages = messages_yaml().replace(
        '    en: "EN fallback {hr_contact}"', '    en: "EN fallback {hr_kontakt}"'
    )
    messages = messages.replace("  greeting:\n", "  greting:\n")
    directory = write_kb(tmp_path / "kb", messages=messages)

    problems = {p.message for p in await problems_in(directory)}

    assert "message 'fallback' (en) uses unknown placeholder {hr_kontakt}" in problems
    assert "message 'fallback' (en) must contain {hr_contact}" in problems
    assert "unknown message 'greting'" in problems
    assert not any("greeting" in p and "not defined" in p for p in problems)


async def test_a_question_used_in_two_entries_is_a_warning_not_an_error(tmp_path: Path) -> None:
    doubled = ENTRIES.replace(
        "        - is filming at work allowed", "        - Can I add my manager on Facebook?"
    )
    kb = await load_knowledge(write_kb(tmp_path / "kb", doubled))

    [warning] = kb.warnings
    assert warning.severity == "warning" and warning.entry_id == "workplace-photos"
    assert "also an example of 'friend-manager'" in warning.message


async def test_an_empty_or_missing_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert any("no .yaml files" in p.message for p in await problems_in(tmp_path / "empty"))
    assert any("does not exist" in p.message for p in await problems_in(tmp_path / "nowhere"))


async def test_an_answer_not_yet_translated_is_a_warning_and_served_in_the_language_it_has(
    tmp_path: Path,
) -> None:
    untranslated = ENTRIES.replace(
        "      nb: Ja, det kan du — men du må aldri. Du kan gjerne takke nei.\n", ""
    )
    kb = await load_knowledge(write_kb(tmp_path / "kb", untranslated))

    [warning] = kb.warnings
    assert (warning.severity, warning.entry_id, warning.line) == ("warning", "friend-manager", 16)
    assert warning.message == "answer is missing in Norwegian (nb)"
    reply = await Conversation(kb).handle(Message("Kan jeg legge til sjefen min på Facebook?"))
    assert (reply.entry_id, reply.lang) == ("friend-manager", "en")  # Reply.lang says which
    assert reply.text.startswith("Yes, you may") and reply.title == "Adding your manager on social media"
    assert "EN feedback_prompt" in reply.labels.values()


async def test_an_empty_answer_and_an_empty_title_are_errors(tmp_path: Path) -> None:
    broken = ENTRIES.replace(
        "    answer:\n      en: Yes, you may — but you never have to. Decline politely if you prefer.\n"
        "      nb: Ja, det kan du — men du må aldri. Du kan gjerne takke nei.\n",
        "    answer: {}\n",
    ).replace(
        "    title:\n      en: Photos and video at work\n      nb: Bilder og video på jobben\n",
        "    title: {}\n",
    )
    problems = [p for p in await problems_in(write_kb(tmp_path / "kb", broken)) if p.severity == "error"]

    assert {(p.entry_id, p.message) for p in problems} == {
        ("friend-manager", "the answer is empty"),
        ("workplace-photos", "the title is empty"),
    }


@pytest.mark.parametrize("written", ["20261101", "2026-W44-7", "2026-11-1", "1. november 2026", "2026-02-30"])
async def test_reviewed_dates_are_written_yyyy_mm_dd(tmp_path: Path, written: str) -> None:
    directory = write_kb(tmp_path / "kb", ENTRIES.replace("reviewed: 2026-11-01", f"reviewed: {written}"))

    [problem] = await problems_in(directory)

    assert problem.message == f"'{written}' is not a date" and problem.line == 22


async def test_a_renamed_id_is_named_as_the_cause_of_the_references_it_broke(tmp_path: Path) -> None:
    renamed = ENTRIES.replace("  - id: workplace-photos", "  - id: workplace-pictures")
    line = renamed.splitlines().index("  - id: workplace-pictures") + 1

    problems = await problems_in(write_kb(tmp_path / "kb", renamed))

    broken = {p.message: p for p in problems if p.severity == "error"}
    assert set(broken) == {
        "related id 'workplace-photos' does not exist",
        "the tip refers to entry 'workplace-photos', which does not exist",
    }
    for problem in broken.values():
        assert problem.fix.startswith(f"caused by line {line} of entries.yaml: that entry is now called ")
        assert "did you mean" not in problem.fix


async def test_a_typo_in_a_reference_still_gets_a_did_you_mean(tmp_path: Path) -> None:
    typo = ENTRIES.replace("related: [workplace-photos]", "related: [workplace-photo]")

    [problem] = [p for p in await problems_in(write_kb(tmp_path / "kb", typo)) if p.severity == "error"]

    assert problem.fix == "did you mean 'workplace-photos'?"  # the entry is referenced elsewhere: not renamed


async def test_problems_inside_a_duplicated_entry_point_at_the_duplicate_id(tmp_path: Path) -> None:
    first = ENTRIES.split("  - id: workplace-photos")[0].split("entries:\n")[1]
    doubled = ENTRIES.replace(
        "tips:", first.replace("    tags: [facebook, manager]", "    tags: oops") + "tips:"
    )
    line = doubled.splitlines().index("  - id: friend-manager", 5) + 1

    problems = await problems_in(write_kb(tmp_path / "kb", doubled))

    [duplicate] = [p for p in problems if p.message.startswith("duplicate id")]
    assert duplicate.line == line
    followers = [p for p in problems if p is not duplicate and p.line and p.line > line]
    assert followers and all(
        p.fix == f"caused by line {line}: the duplicate id 'friend-manager'; fix that first"
        for p in followers
    )
    assert {p.message for p in followers} >= {"tags should be a list but is 'oops'"}


async def test_the_settings_set_the_languages_and_the_trade_off(tmp_path: Path) -> None:
    directory = write_kb(tmp_path / "kb")
    (directory / "settings.yaml").write_text(
        "settings:\n  languages: [nb, en]\n  answer_when_sure: 80\n", encoding="utf-8"
    )

    kb = await load_knowledge(directory)
    conversation = Conversation(kb)

    assert (kb.languages, kb.answer_when_sure) == (("nb", "en"), 80)
    assert conversation.index.fit.answer_at == 0.8
    assert conversation.help("de").lang == "en"  # one it does not speak: the configured default
    assert Conversation(kb, default_lang="sv").help("de").lang == "nb"  # ... else the main language


async def test_a_bot_sentence_missing_in_a_language_is_a_warning_and_falls_back(tmp_path: Path) -> None:
    messages = messages_yaml().replace('    nb: "NB greeting "\n', "")
    kb = await load_knowledge(write_kb(tmp_path / "kb", messages=messages))

    [warning] = [p for p in kb.warnings if "greeting" in p.message]
    assert (warning.severity, warning.message) == (
        "warning",
        "message 'greeting' is missing in Norwegian (nb)",
    )
    assert kb.say("greeting", "nb").startswith("Hei! Jeg er policybot")  # the built-in Norwegian one


async def test_a_knowledge_base_is_written_out_in_one_short_line(tiny_kb_dir: Path) -> None:
    """In a log line or a traceback: not every entry, answer and warning of a large one."""
    kb = await load_knowledge(tiny_kb_dir)

    assert repr(kb) == f"KnowledgeBase(version={kb.version!r}, 2 entries, from {str(tiny_kb_dir)!r})"
