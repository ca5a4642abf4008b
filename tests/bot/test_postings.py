"""The word index: every example read once, compounds counted as their parts, texts folded in bulk as
they would be one by one."""

from __future__ import annotations

import pickle

import numpy as np

from bot.knowledge import Entry, KnowledgeBase
from bot.languages import tokens, tokens_of_many
from bot.matching import Index
from bot.postings import strength


def test_many_texts_fold_and_split_as_each_would_alone() -> None:
    texts = [
        "Kan jeg legge ut bilder på Insta?",
        "Paa jobben: ÆØÅ, æøå and aa/aaa",
        "Café naïve — «sitat» Straße",
        "ΟΔΟΣ ΣΑΣ",
        "",
        "what's up?!",
        "snake_case and 2 digits 42",
    ]

    assert tokens_of_many(texts) == ([w for t in texts for w in tokens(t)], [len(tokens(t)) for t in texts])
    assert tokens_of_many(["a\x00b", "c"]) == (["a", "b", "c"], [2, 1])  # the separator in a text
    assert tokens_of_many([]) == ([], [])


def entry(entry_id: str, questions: list[str], title: str) -> Entry:
    return Entry(id=entry_id, title={"en": title}, questions={"en": tuple(questions)}, answer={"en": "Yes."})


def test_a_compound_counts_as_its_parts_even_when_a_part_is_a_compound_too() -> None:
    # "borkzimpquax" is "bork" + "zimpquax", and "zimpquax" is "zimp" + "quax": read in order, the
    # entry's two "borkzimpquax" examples count for "zimp" and "quax" too, not only its one "zimpquax".
    safety = [
        "borkzimpquax rules",
        "borkzimpquax opening",
        "zimpquax hours",
        *(f"safety question number {n}" for n in ("one", "two", "three", "four", "five", "six", "seven")),
    ]
    kb = KnowledgeBase(
        entries={
            "safety": entry("safety", safety, "Safety rules"),
            "other": entry("other", ["bork alarm test", "zimp from home", "quax discount"], "Other things"),
        },
        tips=(),
        messages={},
        synonyms={},
        version="compounds",
    )
    postings = Index(kb, fit=False).postings

    def strength_in_safety(term: str) -> float:
        t = postings.term_ids[term]
        a, b = postings.entry_ptr[t], postings.entry_ptr[t + 1]
        return float(postings.entry_strength[a:b][postings.entry_ids[a:b] == 0][0])

    two_of_ten = float(strength(np.asarray([2.0]), np.asarray([10.0]))[0])
    assert strength_in_safety("borkzimpquax") == two_of_ten
    assert strength_in_safety("zimpquax") == two_of_ten
    assert strength_in_safety("zimp") == strength_in_safety("quax") == two_of_ten
    assert strength_in_safety("bork") == two_of_ten


def test_an_index_read_back_from_disk_answers_as_the_one_built() -> None:
    # more entries than are compared in full: the learned signal then uses its per-thread scratch
    words = [f"{a}{b}{c}" for a in "bdfk" for b in "aeiou" for c in ("lam", "rot", "sek", "vin", "mul")]
    entries = {
        f"topic-{n}": entry(
            f"topic-{n}",
            [f"{words[n % 100]} {words[(n * 7) % 100]} question {k}" for k in range(4)],
            f"Topic {words[n % 100]}",
        )
        for n in range(300)
    }
    kb = KnowledgeBase(entries=entries, tips=(), messages={}, synonyms={}, version="many")
    built = Index(kb, fit=False)
    questions = [f"{words[n % 100]} {words[(n * 7) % 100]}" for n in range(0, 300, 37)]
    before = [built.match(q, lang="en") for q in questions]

    read_back = pickle.loads(pickle.dumps(built))

    assert [read_back.match(q, lang="en") for q in questions] == before
    assert [built.match(q, lang="en") for q in questions] == before
