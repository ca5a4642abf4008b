"""The word index of a knowledge base: which entries and example questions use each term, and how much.

Built once per knowledge-base load from the analysed example questions (`bot.analysis`), titles, tags
and answers. An entry's weight for a term says how characteristic the term is of it (saturating once
several of its examples use it); the inverse document frequency says how much meaning a term carries.
A query touches only the posting lists of its own terms.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from bot.analysis import Analyzer
from bot.knowledge import KnowledgeBase
from bot.languages import tokens

LANGUAGE_SAMPLE = 20_000  # example questions per language read to learn each language's own words
TITLE_COUNT = 1.0  # a title or tag word counts like this many example questions
ANSWER_COUNT = 0.5  # a word of the answer text counts like this many example questions
STRENGTH_AT = 0.25  # a term in this share of an entry's examples is fully characteristic of it
STRENGTH_POWER = 0.5
UNKNOWN_WEIGHT = 1.0

EMPTY = np.zeros(0, dtype=np.int64)


def strength(count: NDArray[np.float64], size: NDArray[np.float64]) -> NDArray[np.float64]:
    """How characteristic a term is of an entry: saturates once several of its examples use it."""
    return np.asarray(np.minimum(1.0, count / (STRENGTH_AT * size)) ** STRENGTH_POWER)


class Postings:
    """Per entry (the out-of-scope examples' pseudo-entry last) and per example question: its terms."""

    def __init__(self, kb: KnowledgeBase, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.languages = kb.languages
        self.questions: list[str] = []
        self.question_lang: list[str] = []
        question_entry: list[int] = []
        question_terms: list[list[str]] = []
        self.example_counts: list[dict[str, float]] = []  # term -> examples of the entry using it
        self.background: list[dict[str, float]] = []  # term -> what title, tags and answer add
        entry_sizes: list[int] = []
        self.documents: list[Counter[str]] = []  # per entry: its words, for the learned signal
        lang_words: dict[str, Counter[str]] = {lang: Counter() for lang in kb.languages}
        sampled = dict.fromkeys(kb.languages, 0)
        sources = [(e.questions, e.title, e.tags, e.answer) for e in kb.entries.values()]
        # The out-of-scope examples form one more pseudo-entry; when it wins, the bot does not answer.
        if kb.out_of_scope:
            sources.append((kb.out_of_scope, {}, (), {}))
        self.out_of_scope = len(kb.entries) if kb.out_of_scope else -1
        all_counts: list[dict[str, float]] = []  # term -> its weight in the entry, title and tags included
        for number, (entry_questions, titles, tags, answers) in enumerate(sources):
            counts: dict[str, float] = defaultdict(float)
            words: Counter[str] = Counter()
            size = 0
            for lang, texts in entry_questions.items():
                for text in texts:
                    folded = tokens(text)
                    if lang in sampled and sampled[lang] < LANGUAGE_SAMPLE:
                        lang_words[lang].update(folded)
                        sampled[lang] += 1
                    q_terms = list(dict.fromkeys(analyzer.canonical(folded, lang)))
                    self.questions.append(text)
                    self.question_lang.append(lang)
                    question_entry.append(number)
                    question_terms.append(q_terms)
                    for term in q_terms:
                        counts[term] += 1
                    words.update(folded)
                    size += 1
            per_language = max(size // len(entry_questions), 1) if entry_questions else 1
            background = self._background(titles, tags, answers, per_language)
            for title in titles.values():
                words.update(tokens(title))
            self.example_counts.append(dict(counts))
            self.background.append(background)
            entry_counts = dict(counts)
            for term, count in background.items():
                entry_counts[term] = max(entry_counts.get(term, 0.0), count)
            entry_sizes.append(per_language)
            self.documents.append(words)
            all_counts.append(entry_counts)
        self._build(all_counts, question_terms, question_entry, entry_sizes)
        # A word marks a language when its examples use it much more than the other languages' do.
        self.language_words = {
            lang: frozenset(
                w
                for w, n in lang_words[lang].items()
                if n >= 2
                and all(lang_words[o].get(w, 0) * 4 < n for o in kb.languages if o != lang)
                and w not in analyzer.stop
            )
            for lang in kb.languages
        }

    def _background(
        self, titles: Mapping[str, str], tags: tuple[str, ...], answers: Mapping[str, str], per_language: int
    ) -> dict[str, float]:
        """What an entry's answer, title and tags add to its examples' terms."""
        background: dict[str, float] = {}
        for term in self._terms_of(answers):
            background[term] = ANSWER_COUNT
        for term in self._terms_of(titles):
            background[term] = max(background.get(term, 0.0), TITLE_COUNT)
        for lang in self.languages:  # tags are HR's way to say "this word means this entry"
            for tag in tags:
                for term in self._terms_of({lang: tag}):
                    background[term] = STRENGTH_AT * per_language
        return background

    def _terms_of(self, texts: Mapping[str, str]) -> set[str]:
        return {t for lang, text in texts.items() for t in self.analyzer.canonical(tokens(text), lang)}

    def _build(
        self,
        entry_counts: list[dict[str, float]],
        question_terms: list[list[str]],
        question_entry: list[int],
        entry_sizes: list[int],
    ) -> None:
        vocabulary: set[str] = set()
        for counts in entry_counts:
            vocabulary.update(counts)
        self.analyzer.set_vocabulary(vocabulary)
        # Compounds in the examples also count as their parts, so "jobbmobil" meets "jobb mobil".
        first = self.languages[0]
        splits = {
            t: parts for t in vocabulary if len(t) >= 8 and (parts := self.analyzer.split_compound(t, first))
        }
        for counts in entry_counts:
            for term in [t for t in counts if t in splits]:
                for part in splits[term]:
                    counts[part] = max(counts.get(part, 0.0), counts[term])
            vocabulary.update(counts)
        self.analyzer.set_vocabulary(vocabulary)
        # Postings, built from flat (term, entry) and (term, question) pairs grouped by numpy.
        term_ids: dict[str, int] = {}
        pair_term: list[int] = []
        pair_entry: list[int] = []
        pair_count: list[float] = []
        for number, counts in enumerate(entry_counts):
            for term, count in counts.items():
                pair_term.append(term_ids.setdefault(term, len(term_ids)))
                pair_entry.append(number)
                pair_count.append(count)
        terms_by_id = list(term_ids)
        e_term = np.asarray(pair_term, dtype=np.int64)
        e_entry = np.asarray(pair_entry, dtype=np.int64)
        e_count = np.asarray(pair_count, dtype=np.float64)
        self.sizes = np.asarray(entry_sizes, dtype=np.float64)
        n_entries = max(len(entry_counts), 1)
        document_frequency = np.bincount(
            e_term, weights=(e_count >= 1).astype(np.float64), minlength=len(term_ids)
        )
        idf = np.log1p(n_entries / np.maximum(document_frequency, 1.0))
        idf[document_frequency == 0] = 0.0  # a word only of answers explains, but weighs nothing alone
        self.idf: dict[str, float] = {
            t: float(idf[i]) for i, t in enumerate(terms_by_id) if document_frequency[i]
        }
        # An unknown word weighs like a rare known one: meaning the knowledge base cannot explain.
        self.unknown_weight = UNKNOWN_WEIGHT * math.log(1 + n_entries)
        strengths = strength(e_count, self.sizes[e_entry])
        self.entry_postings = {terms_by_id[t]: (ids, st) for t, ids, st in _group(e_term, e_entry, strengths)}
        q_term = np.asarray([term_ids[t] for terms in question_terms for t in terms], dtype=np.int64)
        q_question = np.repeat(
            np.arange(len(question_terms), dtype=np.int64), [len(t) for t in question_terms]
        )
        self.question_postings = {terms_by_id[t]: ids for t, ids, _ in _group(q_term, q_question, None)}
        self.question_terms = [frozenset(t) for t in question_terms]
        self.question_entry = np.asarray(question_entry, dtype=np.int64)
        # each entry's examples are contiguous: entry i owns questions[entry_start[i]:entry_end[i]]
        per_entry = np.bincount(self.question_entry, minlength=len(entry_counts))
        self.entry_end = np.cumsum(per_entry)
        self.entry_start = self.entry_end - per_entry
        self.question_weight = np.bincount(q_question, weights=idf[q_term], minlength=len(question_terms))
        self.n_entries = len(entry_counts)


def _group(
    keys: NDArray[np.int64], values: NDArray[np.int64], weights: NDArray[np.float64] | None
) -> list[tuple[int, NDArray[np.int64], NDArray[np.float64]]]:
    """Split parallel arrays into one (key, values, weights) group per distinct key."""
    if not len(keys):  # e.g. examples made only of filler words: nothing to look up
        return []
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    weighted = weights[order] if weights is not None else np.zeros(len(order))
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    return [(int(keys[a]), values[a:b], weighted[a:b]) for a, b in zip(starts, ends, strict=True)]
