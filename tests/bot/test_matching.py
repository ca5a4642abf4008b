"""The matcher reads chat the way people type it, and says "I don't know" rather than guess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.conversation import Conversation, Message
from bot.knowledge_loader import load_knowledge
from bot.languages import detect, fold, normalise, stem
from bot.matching import Analyzer
from tests.conftest import write_kb


@pytest.fixture
async def conversation(tiny_kb_dir: Path) -> Conversation:
    return Conversation(await load_knowledge(tiny_kb_dir))


def test_folding_treats_norwegian_letters_and_their_ascii_spellings_alike() -> None:
    assert fold("Må jeg følge sjefen på Insta?") == fold("Maa jeg folge sjefen paa Insta?")
    assert fold("Være") == "vaere"


def test_stemming_is_snowball_in_the_language_of_the_text() -> None:
    assert stem("sjefen", "nb") == stem("sjefer", "nb") == "sjef"
    assert stem("photos", "en") == stem("photo", "en")
    assert stem("posting", "en") == stem("posted", "en") == stem("post", "en")
    assert stem("chefens", "sv") == stem("chefen", "sv") == "chef"
    assert stem("arbeitgebers", "de") == stem("arbeitgeber", "de")


def test_synonyms_and_nicknames_become_one_term() -> None:
    analyzer = Analyzer({"facebook": ["fb", "face", "fjesboka"], "manager": ["boss", "sjef", "team lead"]})

    assert analyzer.canonical(analyzer.tokens("my boss on FB")) == ["manager", "facebook"]
    assert analyzer.canonical(analyzer.tokens("sjefen på fjesboka")) == ["manager", "facebook"]
    assert analyzer.canonical(analyzer.tokens("my team lead")) == ["manager"]


def test_two_synonym_groups_never_collapse_and_filler_words_keep_no_meaning() -> None:
    analyzer = Analyzer({"employer": ["company"], "employee": ["staff"], "job ad": ["stillinger"]})

    assert analyzer.canonical(analyzer.tokens("employer employee")) == ["employer", "employee"]
    assert analyzer.canonical(analyzer.tokens("still a company")) == ["employer"]
    assert analyzer.canonical(analyzer.tokens("stillingene")) == ["jobad"]


def test_compounds_split_into_known_parts() -> None:
    analyzer = Analyzer({"facebook": ["fb"], "phone": ["mobil", "mobile"], "employer": ["jobb"]})
    analyzer.set_vocabulary(analyzer.canonical(["facebook", "venn", "mobile", "jobb"]))
    employer, phone = analyzer.canonical(["jobb", "mobil"])

    assert analyzer.terms("Facebook-venn") == ["facebook", "venn"]
    assert analyzer.terms("facebookvenn") == ["facebook", "venn"]
    assert analyzer.terms("jobbmobil") == [employer, phone]


def test_typos_are_corrected_towards_known_words_but_real_words_are_left_alone() -> None:
    analyzer = Analyzer({"instagram": ["insta"], "colleague": ["kollega", "kolleger"]})
    analyzer.set_vocabulary({"instagram", "colleague", "photo"})

    assert analyzer.terms("instagarm") == ["instagram"]
    assert analyzer.terms("kolegaer") == ["colleague"]
    assert analyzer.terms("photso") == ["photo"]
    assert analyzer.terms("parking") == [stem("parking", "en")]  # not "corrected" into something it isn't


def test_language_comes_from_the_words_then_the_hint_then_the_main_language() -> None:
    both = ("en", "nb")
    assert detect("Kan jeg legge til sjefen min?", both, None) == "nb"
    assert detect("Can I add my boss?", both, "nb-NO") == "en"
    assert detect("fb?", both, "nb_NO") == "nb"
    assert detect("fb?", ("nb", "en"), None) == "nb"
    assert detect("fb?", both, None) == "en"
    assert detect("blåbær", both, None) == "nb"
    assert detect("Får jag lägga till min chef på Facebook?", ("en", "sv"), None) == "sv"
    assert detect("anything at all", ("de",), "en") == "de"  # a one-language bot never guesses
    assert normalise("nn-NO") == "nb" and normalise("de-DE") == "de" and normalise("xx-YY") is None


async def test_casual_questions_find_their_entry_in_either_language(conversation: Conversation) -> None:
    asked = {
        "can i add my boss on fb": "friend-manager",
        "Kan jeg legge til sjefen på face?": "friend-manager",
        "maa jeg godta venneforesporsel fra lederen": "friend-manager",
        "selfie at the office ok?": "workplace-photos",
        "bilder fra jobben pa insta?": "workplace-photos",
    }
    for question, expected in asked.items():
        result = conversation.match(question)
        assert result.answer_id == expected, (question, result)
        assert 0 < result.confidence <= 1


async def test_out_of_scope_questions_get_no_answer(conversation: Conversation) -> None:
    for question in ("how do I reset my password", "når kommer lønna", "asdf qwerty", "12345"):
        result = conversation.match(question)
        assert result.answer_id is None and result.suggestions == (), question


async def test_a_question_close_to_two_entries_offers_both(conversation: Conversation) -> None:
    result = conversation.match("my boss in photos")

    assert result.answer_id is None
    assert set(result.suggestions) == {"friend-manager", "workplace-photos"}


async def test_a_question_only_of_words_every_topic_uses_is_never_answered_outright(
    all_about_work: Conversation,
) -> None:
    """ "Can I post about work?" fits every entry: the bot asks which one, however well it scores."""
    vague = all_about_work.match("can I post about work?")  # word for word one of the photo examples

    assert vague.answer_id is None and not vague.specific
    assert vague.suggestions[0] == "photos"
    assert all_about_work.match("can I post about salaries from work?").answer_id == "salaries"


async def test_out_of_scope_examples_from_the_knowledge_base_win_over_a_weak_match(tiny_kb_dir: Path) -> None:
    (tiny_kb_dir / "out-of-scope.yaml").write_text(
        "out_of_scope:\n  en:\n    - how do I change my profile photo on facebook\n"
        "  nb:\n    - hvordan bytter jeg profilbilde på facebook\n",
        encoding="utf-8",
    )
    conversation = Conversation(await load_knowledge(tiny_kb_dir))

    assert conversation.match("how do I change my profile photo on fb?").answer_id is None
    assert conversation.match("Can I post photos from work?").answer_id == "workplace-photos"


class ReadLog(dict[str, Any]):
    """Postings that note every term read from them; iterating them reads every term."""

    def __init__(self, postings: dict[str, Any], read: list[str]) -> None:
        super().__init__(postings)
        self.read = read

    def __getitem__(self, term: str) -> Any:
        self.read.append(term)
        return super().__getitem__(term)

    def get(self, term: str, default: Any = None) -> Any:
        self.read.append(term)
        return super().get(term, default)

    def __iter__(self) -> Iterator[str]:
        self.read.extend(dict.keys(self))
        return super().__iter__()

    def items(self) -> Any:
        self.read.extend(dict.keys(self))
        return super().items()

    def values(self) -> Any:
        self.read.extend(dict.keys(self))
        return super().values()


async def test_the_index_is_built_once_and_a_query_only_reads_its_own_terms(
    conversation: Conversation,
) -> None:
    index = conversation.index
    read: list[str] = []
    index.postings.term_ids = ReadLog(index.postings.term_ids, read)  # a term's row in every posting list

    for question in ("can i add my boss on fb", "Kan jeg legge ut bilder fra jobben?", "asdf qwerty"):
        terms = conversation.match(question).terms
        read.clear()
        await conversation.handle(Message(question))
        assert read, f"{question!r} was not answered from the index built at start"
        assert set(read) <= set(terms), (question, sorted(set(read) - set(terms)))
    assert conversation.index is index


async def test_examples_of_only_filler_words_load_and_simply_match_nothing(tmp_path: Path) -> None:
    entries = """\
entries:
  - id: vague
    title: {en: Vague, nb: Vagt}
    questions: {en: ["what is it?", "can I do it?"], nb: ["hva er det?", "?!"]}
    answer: {en: It depends., nb: Det kommer an på.}
"""
    conversation = Conversation(await load_knowledge(write_kb(tmp_path / "kb", entries)))

    assert not conversation.index.postings.example_ids.size  # no example question has a term
    for question in ("what is it?", "can I post photos from work?"):
        result = conversation.match(question)
        assert result.answer_id is None and result.suggestions == (), question


async def test_an_entry_whose_examples_are_alike_expects_questions_closer_than_a_varied_one(
    tmp_path: Path,
) -> None:
    entries = """\
entries:
  - id: password
    title: {en: Password}
    questions: {en: ["how do I reset my password", "reset my password please", "password reset how",
                     "I need to reset my password", "how to reset password"]}
    answer: {en: Use the self-service page.}
  - id: pets
    title: {en: Pets}
    questions: {en: ["can I bring my dog to the office", "are animals allowed at work",
                     "is a cat at my desk ok", "office pet rules", "may my puppy come along on fridays"]}
    answer: {en: Guide dogs only.}
"""
    folder = write_kb(tmp_path / "kb", entries)
    conversation = Conversation(await load_knowledge(folder), fit_cache=tmp_path / "cache")
    index = conversation.index
    password, pets = index.entry_ids.index("password"), index.entry_ids.index("pets")

    assert index.usual[password] > index.usual[pets]
    best = conversation.match("how can I reset the password").ranked[0]
    assert (best.entry_id, best.usual) == ("password", round(float(index.usual[password]), 4))
    again = Conversation(await load_knowledge(folder), fit_cache=tmp_path / "cache").index
    assert again.fit == index.fit and again.fit.usual == tuple(float(u) for u in index.usual)  # kept
