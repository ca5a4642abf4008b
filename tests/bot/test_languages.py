"""A knowledge base speaks the languages HR writes it in: English only, Swedish, or several."""

from __future__ import annotations

import textwrap
from pathlib import Path

from bot.conversation import Conversation, Message, ReplyKind
from bot.errors import Problem
from bot.knowledge_loader import load_knowledge

ENGLISH_ONLY = """\
entries:
  - id: remote-work
    title: {en: Working from home}
    questions:
      en:
        - Can I work from home?
        - how many days a week may I work remotely
        - do I need my manager's approval to work from home
        - is working from a cafe allowed
    answer: {en: "Up to two days a week, agreed with your manager."}
  - id: expenses
    title: {en: Travel expenses}
    questions:
      en:
        - How do I claim travel expenses?
        - where do I submit my taxi receipts
        - what is the deadline for expense reports
        - can I get reimbursed for a train ticket
    answer: {en: Submit receipts in the expense app within 30 days.}
out_of_scope:
  en:
    - what is the wifi password
"""

SWEDISH = """\
settings:
  languages: [sv, en]
entries:
  - id: semester
    title: {sv: Semester, en: Vacation}
    questions:
      sv:
        - Hur många semesterdagar har jag?
        - När måste jag ansöka om semester?
        - kan jag spara semesterdagar till nästa år
        - får chefen neka min semester
      en:
        - How many vacation days do I have?
    answer:
      sv: Du har 25 semesterdagar; ansök senast den 31 mars.
      en: You have 25 vacation days; apply by 31 March.
  - id: friskvard
    title: {sv: Friskvårdsbidrag}
    questions:
      sv:
        - Hur stort är friskvårdsbidraget?
        - kan jag få bidrag för gymkort
        - betalar företaget min träning
        - vilka aktiviteter ger friskvårdsbidrag
    answer:
      sv: Du får 3000 kronor om året för träning.
tips:
  - id: ansok-tidigt
    sv: Ansök om sommarsemester före den 31 mars.
"""


def write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "kb.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


async def test_an_english_only_folder_is_an_english_bot(tmp_path: Path) -> None:
    kb = await load_knowledge(write(tmp_path / "kb", ENGLISH_ONLY))
    conversation = Conversation(kb, default_lang="nb")  # a default the knowledge base does not speak

    assert kb.languages == ("en",)
    assert [p for p in kb.warnings if "Norwegian" in p.message] == []  # nothing is "missing in Norwegian"
    reply = await conversation.handle(Message("may I work from home on fridays?", lang_hint="nb-NO"))
    assert (reply.kind, reply.entry_id, reply.lang) == (ReplyKind.ANSWER, "remote-work", "en")
    assert reply.title == "Working from home"
    fallback = await conversation.handle(Message("what is the wifi password?"))
    assert fallback.kind is ReplyKind.FALLBACK
    assert fallback.text.startswith(
        "Sorry, I don't know"
    )  # the built-in English sentences, none written by HR
    assert conversation.help("nb").lang == "en"


async def test_a_swedish_knowledge_base_loads_answers_detects_swedish_and_falls_back(tmp_path: Path) -> None:
    kb = await load_knowledge(write(tmp_path / "kb", SWEDISH))
    conversation = Conversation(kb)

    assert kb.languages == ("sv", "en")
    warnings = {(p.entry_id, p.message) for p in kb.warnings}
    assert ("friskvard", "title is missing in English") in warnings
    assert ("friskvard", "answer is missing in English") in warnings
    assert ("ansok-tidigt", "the tip is missing in English") in warnings
    assert any("not written in Swedish" in message for _, message in warnings)  # the bot's own sentences

    reply = await conversation.handle(Message("hur många dagar semester får jag?"))
    assert (reply.kind, reply.entry_id, reply.lang) == (ReplyKind.ANSWER, "semester", "sv")
    assert reply.text.startswith("Du har 25")
    gym = await conversation.handle(Message("Får jag friskvårdsbidrag för gymmet?"))
    assert (gym.entry_id, gym.lang) == ("friskvard", "sv")

    english = await conversation.handle(Message("how many vacation days do I have left?"))
    assert (english.entry_id, english.lang, english.title) == ("semester", "en", "Vacation")
    asked_in_english = await conversation.answer_entry("friskvard", "en")
    assert asked_in_english.lang == "sv" and asked_in_english.text.startswith("Du får")  # the main language
    tip = conversation.tip("en")
    assert tip.text == "Ansök om sommarsemester före den 31 mars."
    assert conversation.help("sv").text == conversation.help("en").text  # no Swedish built-ins: English


async def test_a_declared_language_nobody_wrote_is_a_warning_not_a_refusal(tmp_path: Path) -> None:
    kb = await load_knowledge(write(tmp_path / "kb", "settings:\n  languages: [en, de]\n" + ENGLISH_ONLY))

    assert kb.languages == ("en", "de")
    missing = [p for p in kb.warnings if p.message.endswith("missing in German")]
    assert {p.entry_id for p in missing} == {"remote-work", "expenses"}
    assert all(isinstance(p, Problem) and p.severity == "warning" for p in missing)
    assert "until then the bot answers in English" in next(
        p.fix for p in missing if p.message == "answer is missing in German"
    )


async def test_norwegian_spellings_with_and_without_special_letters_meet(tmp_path: Path) -> None:
    text = """\
    entries:
      - id: sykemelding
        title: {nb: Sykemelding}
        questions:
          nb:
            - Hvordan får jeg sykemelding?
            - må jeg gå til legen når jeg er syk
            - hvor lenge kan jeg være borte med egenmelding
        answer: {nb: Bruk egenmelding i inntil tre dager.}
      - id: ferie
        title: {nb: Ferie}
        questions:
          nb:
            - Hvor mange feriedager har jeg?
            - når må jeg søke om sommerferie
            - kan jeg overføre ferie til neste år
        answer: {nb: Du har fem uker ferie.}
    """
    conversation = Conversation(await load_knowledge(write(tmp_path / "kb", text)))

    for question in ("maa jeg gaa til legen naar jeg er syk?", "må jeg gå til legen når jeg er syk?"):
        result = conversation.match(question)
        assert (result.answer_id or result.suggestions[0], result.lang) == ("sykemelding", "nb"), question
    assert conversation.match("hvor mange feriedager har jeg igjen").answer_id == "ferie"
