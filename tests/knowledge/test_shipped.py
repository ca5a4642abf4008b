"""The default guidelines that ship with policybot: complete, bilingual, and answering well.

These are the tests of the shipped knowledge base, so they read `knowledge/` itself.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from adapters.cli_kb_check import self_test
from bot.conversation import Conversation, Message, ReplyKind
from bot.knowledge import LANGS, KnowledgeBase
from bot.knowledge_loader import load_knowledge

ROOT = Path(__file__).resolve().parents[2]
DEVSET = ROOT / "tests" / "bot" / "data" / "devset.yaml"
ENTRY_IDS = """
    friend-manager manager-friend-requests friend-clients mention-employer workplace-photos
    confidential-info criticize-employer defend-employer like-share-employer social-media-working-hours
    colleague-wellbeing harassment-bullying rumours speak-for-company employer-branding
    professional-sharing old-posts-footprint private-life consequences guidelines-about
""".split()


@pytest.fixture(scope="module")
def shipped() -> KnowledgeBase:
    return asyncio.run(load_knowledge(ROOT / "knowledge"))


async def test_the_guidelines_cover_exactly_the_agreed_topics(shipped: KnowledgeBase) -> None:
    assert sorted(shipped.entries) == sorted(ENTRY_IDS)


async def test_every_entry_is_bilingual_with_enough_varied_examples(shipped: KnowledgeBase) -> None:
    for entry in shipped.entries.values():
        for lang in LANGS:
            assert len(set(entry.questions[lang])) >= 8, (entry.id, lang)
            assert len(entry.answer[lang].split()) >= 40, (entry.id, lang)
            assert entry.title[lang]
        assert entry.owner and entry.reviewed and entry.source


async def test_there_are_at_least_thirty_bilingual_tips(shipped: KnowledgeBase) -> None:
    assert len(shipped.tips) >= 30
    assert all(set(tip.text) == set(LANGS) for tip in shipped.tips)
    assert all(tip.entry in shipped.entries for tip in shipped.tips)


async def test_kb_check_self_test_finds_no_errors(shipped: KnowledgeBase) -> None:
    problems = self_test(shipped)

    assert [str(p) for p in problems if p.severity == "error"] == []


async def test_paraphrased_questions_are_answered_right_and_out_of_scope_ones_are_not(
    shipped: KnowledgeBase,
) -> None:
    """The development set is written apart from the knowledge base's examples (none are copies)."""
    questions = yaml.safe_load(DEVSET.read_text(encoding="utf-8"))["questions"]
    examples = {q.lower() for e in shipped.entries.values() for qs in e.questions.values() for q in qs}
    assert not [q["q"] for q in questions if q["q"].lower() in examples], "the devset must not copy examples"
    bot = Conversation(shipped)
    in_scope = [q for q in questions if q["expect"]]
    out_of_scope = [q for q in questions if not q["expect"]]
    assert len(questions) >= 150 and len(out_of_scope) >= 30
    assert {q["lang"] for q in in_scope} == {"en", "nb"}

    right = [q for q in in_scope if bot.match(q["q"]).answer_id == q["expect"]]
    abstained = [q for q in out_of_scope if bot.match(q["q"]).answer_id is None]

    accuracy, abstention = len(right) / len(in_scope), len(abstained) / len(out_of_scope)
    assert accuracy >= 0.90, f"top-1 accuracy in scope {accuracy:.1%}"
    assert abstention >= 0.90, f"abstention out of scope {abstention:.1%}"


async def test_answers_come_in_the_language_of_the_question(shipped: KnowledgeBase) -> None:
    questions = yaml.safe_load(DEVSET.read_text(encoding="utf-8"))["questions"]
    bot = Conversation(shipped)

    wrong = [q["q"] for q in questions if q["expect"] and bot.match(q["q"]).lang != q["lang"]]

    assert len(wrong) <= len(questions) * 0.03, wrong


@pytest.mark.parametrize(
    ("question", "lang"), [("what's the wifi password", "en"), ("hvordan søker jeg ferie", "nb")]
)
async def test_i_dont_know_says_how_to_reach_hr_without_promising_a_button(
    shipped: KnowledgeBase, question: str, lang: str
) -> None:
    """The terminal has no "Ask HR" button, nor Slack without an HR channel: the text must not need one."""
    reply = await Conversation(shipped).handle(Message(text=question))

    assert (reply.kind, reply.lang) == (ReplyKind.FALLBACK, lang)
    assert "hr@example.com" in reply.text
    assert not any(word in reply.text.lower() for word in ("below", "under", "button", "knapp", "trykk"))


@pytest.mark.parametrize("question", ["can I post about work?", "kan jeg poste om jobben?", "tiktok"])
async def test_a_vague_question_gets_a_did_you_mean_instead_of_a_guess(
    shipped: KnowledgeBase, question: str
) -> None:
    result = Conversation(shipped).match(question)

    assert result.answer_id is None
    assert len(result.suggestions) >= 2


@pytest.mark.parametrize("question", ["privatliv?", "working hours?", "delete?"])
async def test_a_one_word_question_that_fits_one_topic_only_is_answered(
    shipped: KnowledgeBase, question: str
) -> None:
    """A "did you mean" with a single choice is no choice: a vague word only one entry fits is answered."""
    assert Conversation(shipped).match(question).answer_id is not None


# Plain (unquoted) scalars a YAML reader may take for something other than text: YAML 1.2's core
# schema (yaml-language-server's reading) resolves these to booleans, null and numbers, and YAML 1.1
# (PyYAML and older tools) also reads yes/no/on/off/y/n as booleans. Every value in the knowledge files
# is text (a `reviewed` date is text in YAML 1.2), so each such word must be quoted.
NOT_TEXT = re.compile(
    r"^(?:true|True|TRUE|false|False|FALSE|null|Null|NULL|~|"
    r"y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|"
    r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|"
    r"[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$"
)


def unquoted_non_text(text: str) -> list[tuple[int, str]]:
    """(line, value) of every plain scalar in `text` that YAML 1.2 or 1.1 would not read as text."""
    found: list[tuple[int, str]] = []
    nodes: list[yaml.Node] = [n for n in yaml.compose_all(text) if n is not None]
    while nodes:
        node = nodes.pop()
        if isinstance(node, yaml.ScalarNode):
            if node.style is None and NOT_TEXT.match(node.value):
                found.append((node.start_mark.line + 1, node.value))
        elif isinstance(node, yaml.SequenceNode):
            nodes += node.value
        elif isinstance(node, yaml.MappingNode):
            nodes += [part for pair in node.value for part in pair]
    return sorted(found)


def test_the_check_finds_what_a_yaml_1_2_editor_would_read_as_a_boolean() -> None:
    text = 'synonyms:\n  untrue: [lies, false, "true", 2026-11-01]\n  "no": [off]\n'
    assert unquoted_non_text(text) == [(2, "false"), (3, "off")]


@pytest.mark.parametrize("path", sorted((ROOT / "knowledge").glob("*.yaml")), ids=lambda p: p.name)
def test_the_shipped_files_are_all_text_to_a_yaml_1_2_reader(path: Path) -> None:
    assert unquoted_non_text(path.read_text(encoding="utf-8")) == [], "quote these words"


class Yaml12Loader(yaml.SafeLoader):
    """Reads plain scalars as YAML 1.2's core schema does (yaml-language-server's reading): only
    true/false, null and numbers are not text; dates and yes/no stay text."""

    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, re.Pattern[str]]]]] = {}


for tag, pattern, first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
):
    Yaml12Loader.add_implicit_resolver(tag, re.compile(pattern), list(first))


@pytest.mark.parametrize("path", sorted((ROOT / "knowledge").glob("*.yaml")), ids=lambda p: p.name)
def test_the_shipped_files_pass_the_shipped_schema_as_an_editor_reads_them(path: Path) -> None:
    from bot.schema import validator

    data = yaml.load(path.read_text(encoding="utf-8"), Loader=Yaml12Loader)  # a SafeLoader
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(data)] == []
