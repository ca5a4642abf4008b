"""The JSON Schema HR's editor uses and the loader the bot uses agree: on the shipped files, and on
every mistake below (each is refused by both) and every legitimate variant (each is accepted by both)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from bot.errors import KnowledgeError, Problem
from bot.knowledge import ALL_MESSAGE_KEYS, LANGS
from bot.knowledge_loader import load_knowledge
from bot.schema import schema_path, schema_problems, validate
from bot.yaml_fields import ID_PATTERN
from bot.yaml_files import compose_file
from tests.conftest import ENTRIES, messages_yaml

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "knowledge").glob("*.yaml"))


def entry(**changes: str) -> str:
    """A valid entry of its own (no id or example shared with the small knowledge base), as YAML."""
    fields = {
        "id": "id: fixture-entry",
        "title": "title:\n  en: Fixture topic\n  nb: Testemne",
        "questions": "questions:\n  en:\n    - what is the fixture rule\n  nb:\n    - hva er testregelen",
        "answer": "answer:\n  en: The fixture answer.\n  nb: Testsvaret.",
        "reviewed": "reviewed: 2026-11-01",
    }
    fields.update(changes)
    body = "\n".join(v for v in fields.values() if v)
    return "entries:\n  - " + textwrap.indent(body, "    ")[4:] + "\n"


def schema_findings(path: Path) -> list[Problem]:
    return validate(compose_file(path), str(path))


async def loader_errors(directory: Path) -> list[Problem]:
    try:
        kb = await load_knowledge(directory)
    except KnowledgeError as exc:
        return [p for p in exc.problems if p.severity == "error"]
    assert kb.entries
    return []


def test_the_schema_is_valid_draft_2020_12_and_knows_every_message_and_language() -> None:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    messages = schema["properties"]["messages"]["properties"]
    assert set(messages) == set(ALL_MESSAGE_KEYS), (
        "a new message key needs its entry in knowledge.schema.json"
    )
    language = {"$ref": "#/$defs/language"}
    assert all(m["propertyNames"] == language for m in messages.values())
    assert schema["$defs"]["bilingual"]["propertyNames"] == language
    assert set(schema["$defs"]["language"]["enum"]) >= {*LANGS, "sv", "de", "da"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_file_validates_and_points_editors_at_the_schema(path: Path) -> None:
    assert path.read_text(encoding="utf-8").startswith(
        "# yaml-language-server: $schema=./knowledge.schema.json\n"
    )
    assert [str(p) for p in schema_findings(path)] == []


def test_the_bots_sentences_with_their_placeholders_and_literal_braces_validate(tmp_path: Path) -> None:
    path = tmp_path / "messages.yaml"
    path.write_text(
        messages_yaml().replace(
            '"EN escalation_to_hr {question}"', '"{user} asks {{literally}}: {question}"'
        ),
        encoding="utf-8",
    )

    assert schema_findings(path) == []


@pytest.mark.parametrize(
    "value", ["friend-manager", "a", "x" * 64, "Friend-manager", "-x", "a_b", "x" * 65, "æ"]
)
def test_the_id_rule_is_the_loaders(tmp_path: Path, value: str) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(entry(id=f"id: {value}"), encoding="utf-8")

    assert (schema_findings(path) == []) == bool(ID_PATTERN.match(value))


INVALID = {
    "unknown field": entry(tags="questons: [x]"),
    "wrong type": entry(tags="tags: facebook"),
    "list item not text": entry(tags="tags: [[a, b]]"),
    "bad id": entry(id="id: Friend_Manager"),
    "bad date": entry(reviewed="reviewed: 2026-13-01"),
    "impossible date": entry(reviewed="reviewed: 2026-02-30"),
    "date not YYYY-MM-DD": entry(reviewed="reviewed: 20261101"),
    "empty title": entry(title="title: {}"),
    "title as one string": entry(title="title: Fixture topic"),
    "no title": entry(title=""),
    "no answer": entry(answer=""),
    "answer in no language": entry(answer="answer: {}"),
    "empty answer text": entry(answer='answer:\n  en: ""\n  nb: Testsvaret.'),
    "no questions in a language": entry(
        questions="questions:\n  en:\n    - what is the fixture rule\n  nb: []"
    ),
    "unknown language": entry(questions="questions:\n  en: [a fixture question]\n  nb: [et]\n  xx: [eine]"),
    "Norwegian written as no": entry(questions="questions:\n  en: [a fixture question]\n  no: [et]"),
    "an empty entry": "entries:\n  - {}\n",
    "an empty tip": "tips:\n  - {}\n",
    "questions in no language": entry(questions="questions: {}"),
    "a language that is not one": "settings:\n  languages: [english]\n",
    "answer_when_sure out of range": "settings:\n  answer_when_sure: 101\n",
    "an unknown setting": "settings:\n  language: [en]\n",
    "empty owner": entry(tags="owner:"),
    "bad url": entry(tags="links:\n  - url: intranet.example.com/photos"),
    "link without url": entry(tags="links:\n  - title: Photos"),
    "unknown link field": entry(tags="links:\n  - url: https://x.example\n    href: https://y.example"),
    "no id": entry(id=""),
    "entries not a list": "entries:\n  id: fixture-entry\n",
    "unknown section": "entrys: []\n",
    "file is a list": "- entries\n",
    "unknown message key": "messages:\n  greting:\n    en: Hi\n    nb: Hei\n",
    "message without its placeholder": (
        "messages:\n  fallback:\n    en: Ask HR.\n    nb: 'Spør HR: {hr_contact}'\n"
    ),
    "message with an unknown placeholder": (
        'messages:\n  fallback:\n    en: "{hr_contact} {name}"\n    nb: "{hr_contact}"\n'
    ),
    "message with a lone brace": 'messages:\n  greeting:\n    en: "Hi {"\n    nb: Hei\n',
    "tip with a bad id": "tips:\n  - id: Fixture Tip\n    en: A tip\n    nb: Et tips\n",
    "tip with an unknown field": (
        "tips:\n  - id: fixture-tip\n    en: A tip\n    nb: Et tips\n    tekst: Ein Tipp\n"
    ),
    "synonyms not a list": "synonyms:\n  boss: sjef\n",
    "out of scope in an unknown language": "out_of_scope:\n  xx:\n    - Hur mycket semester har jag?\n",
    "empty out-of-scope question": 'out_of_scope:\n  en:\n    - ""\n',
}


@pytest.mark.parametrize("text", INVALID.values(), ids=INVALID.keys())
async def test_a_mistake_is_refused_by_both_the_schema_and_the_loader(tiny_kb_dir: Path, text: str) -> None:
    extra = tiny_kb_dir / "extra.yaml"
    extra.write_text(text, encoding="utf-8")

    findings = schema_findings(extra)
    errors = await loader_errors(tiny_kb_dir)

    assert findings, "the schema accepts it"
    assert [p for p in errors if p.file == str(extra)], "the loader accepts it"
    assert all(p.line is not None for p in findings)  # every finding is located in the file


VALID = {
    "optional fields": entry(
        tags=(
            "tags: [fixture, 'no', 42]\nrelated: []\nlinks:\n  - url: https://x.example/a\n"
            "    title: One title for both\n  - url: mailto:hr@x.example\n"
            "source: Guidelines 2.1\nowner: HR"
        )
    ),
    "answer in one language (a warning)": entry(answer="answer:\n  en: The fixture answer."),
    "bilingual source and link title": entry(
        tags="source:\n  en: Guidelines\n  nb: Retningslinjer\nlinks:\n  - url: https://x.example\n"
        "    title: {en: Photos, nb: Bilder}"
    ),
    "words YAML 1.1 reads as booleans and numbers": "synonyms:\n  nei: ['no', n, off]\n  g5: [5g, 5]\n",
    "an empty file": "",
    "only comments": "# yaml-language-server: $schema=./knowledge.schema.json\n# nothing yet\n",
    "empty sections": "entries: []\ntips: []\n",
    "a tip about an entry": (
        "tips:\n  - id: fixture-tip\n    entry: friend-manager\n    en: A tip\n    nb: Et tips\n"
    ),
    "out of scope in one language": "out_of_scope:\n  en:\n    - How many vacation days do I have?\n",
    # A missing translation is a warning (the bot falls back to the main language), never a refusal.
    "a title missing a language": entry(title="title:\n  en: Fixture topic"),
    "questions in one language": entry(questions="questions:\n  en:\n    - what is the fixture rule"),
    "a source missing a language": entry(tags="source:\n  en: Guidelines 2.1"),
    "a tip missing a language": "tips:\n  - id: fixture-tip\n    en: Only English\n",
    "a third language": entry(questions="questions:\n  en: [a fixture question]\n  nb: [et]\n  de: [eine]"),
    "a tip in a third language": (
        "tips:\n  - id: fixture-tip\n    en: A tip\n    nb: Et tips\n    de: Ein Tipp\n"
    ),
    "settings": "settings:\n  languages: [nb, en]\n  answer_when_sure: 80\n",
    "out of scope in Swedish": "out_of_scope:\n  sv:\n    - Hur mycket semester har jag?\n",
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
async def test_a_legitimate_variant_is_accepted_by_both(tiny_kb_dir: Path, text: str) -> None:
    extra = tiny_kb_dir / "extra.yaml"
    extra.write_text(text, encoding="utf-8")

    assert [str(p) for p in schema_findings(extra)] == []
    assert [str(p) for p in await loader_errors(tiny_kb_dir)] == []


def test_a_finding_names_the_line_the_field_and_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "entries.yaml"
    path.write_text(entry(tags="questons: [x]", reviewed="reviewed: 1st of November"), encoding="utf-8")

    date, unknown = schema_findings(path)

    assert (unknown.line, unknown.entry_id) == (15, "fixture-entry")
    assert unknown.message == "schema: unknown field 'questons' in entries[1]"
    assert "questions" in unknown.fix and "reviewed" in unknown.fix  # the fields allowed there
    assert (date.line, date.column) == (14, 15)
    assert date.message == "schema: entries[1].reviewed: '1st of November' is not in the right form"
    assert "YYYY-MM-DD" in date.fix


def test_what_the_editor_reads_is_what_the_loader_reads(tmp_path: Path) -> None:
    """YAML 1.1 would read `no` as false and `2026-11-01` as a date; the loader reads the text typed."""
    path = tmp_path / "vocabulary.yaml"
    path.write_text("synonyms:\n  nei: [no, off]\n", encoding="utf-8")

    assert yaml.safe_load(path.read_text())["synonyms"]["nei"] == [False, False]
    assert schema_findings(path) == []


async def test_a_folder_named_like_a_yaml_file_is_left_to_the_loader(tiny_kb_dir: Path) -> None:
    """The loader names it; the schema check neither crashes on it nor stops checking the other files."""
    (tiny_kb_dir / "old.yaml").mkdir()
    (tiny_kb_dir / "entries.yaml").write_text(
        "# yaml-language-server: $schema=./knowledge.schema.json\n" + ENTRIES, encoding="utf-8"
    )

    problems = await schema_problems(tiny_kb_dir)

    assert [p.message for p in problems] == [
        "the files refer to ./knowledge.schema.json, which is not in the folder (editors check against it)"
    ]
