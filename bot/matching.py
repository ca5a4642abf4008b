"""Finds the knowledge-base entry a chat question is about, or decides that none is.

Three signals are combined, each computed from the knowledge base that is loaded:

* coverage: how much of the question's meaning (IDF-weighted terms, see `bot.analysis`) the entry's
  vocabulary explains; a question about something else leaves most of its weight unexplained;
* closeness: the weighted overlap with the entry's single best example question;
* resemblance (learned): cosine similarity with the centroid of the entry's examples in a TF-IDF space
  of character n-grams and words (`bot.similarity`).

How sure the bot is, and so whether it answers, offers "did you mean" or says it does not know, is
fitted at load time on the knowledge base's own examples (`bot.calibration`). The weights of the
signals were chosen by cross-validation over several knowledge bases (`bench/cross_validate.py`).

The index is built once per knowledge-base load; a query touches only the posting lists of its own
terms (numpy scatter-adds) and the centroid rows of its candidate entries.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bot import calibration
from bot.analysis import Analyzer, fold_all
from bot.calibration import Fit, Observation
from bot.knowledge import KnowledgeBase
from bot.languages import CHAT_FILLERS, detect, fold, normalise, stem, stop_words_of, tokens
from bot.similarity import Space

__all__ = [
    "MAX_QUERY_CHARS",
    "OUT_OF_SCOPE",
    "STOPWORDS",
    "Analyzer",
    "Index",
    "Match",
    "Result",
    "fold",
    "stem",
]

STOPWORDS = CHAT_FILLERS  # the chat filler of English and Norwegian (bot.report groups questions with it)
SUGGEST_WITHIN = 0.7  # suggestions score at least this share of the best one (or of its word signal)
MAX_SUGGESTIONS = 3
LANGUAGE_SAMPLE = 20_000  # example questions per language read to learn each language's own words
CANDIDATES = 64  # with more entries than ALL_ENTRIES, only this many are scored in full per question
ALL_ENTRIES = 256
USUAL_SAMPLE = 1000  # example questions compared with their own entry to learn how close they usually are
USUAL_PRIOR = 1.0  # an entry's own figure weighs against this many examples at the average of all
FIT_SAMPLE = 400  # example questions asked at load time to fit the confidence (spread over entries)
# Weights chosen by bench/cross_validate.py (mean top-1 over the shipped knowledge base and BANKING77
# knowledge bases of 5, 10 and 20 examples per entry; never one knowledge base alone).
LEARNED_WEIGHT = 0.8  # share of the score that is resemblance (the learned signal)
COVERAGE_WEIGHT = 0.5  # within the word signal: coverage vs closeness
TITLE_COUNT = 1.0  # a title or tag word counts like this many example questions
ANSWER_COUNT = 0.5  # a word of the answer text counts like this many example questions
STRENGTH_AT = 0.25  # a term in this share of an entry's examples is fully characteristic of it
STRENGTH_POWER = 0.5
UNKNOWN_WEIGHT = 1.0
CORE_PENALTY = 0.5  # how much a match on incidental words alone is discounted
MAX_QUERY_CHARS = 1000  # a chat question is a few hundred characters; the rest is not read
# An out-of-scope example about as close as an entry does not win: the entry is offered, as a "did you
# mean" at most ("tiktok" alone is a vague question about a topic the guidelines cover).
OUT_OF_SCOPE_TIES = 0.95
OUT_OF_SCOPE = ""  # the id of the pseudo-entry made of the knowledge base's out-of-scope examples


@dataclass(frozen=True)
class Match:
    entry_id: str
    score: float
    question: str  # the example question closest to what was asked
    words: float = 0.0  # the word signal (coverage and closeness)
    resemblance: float = 0.0  # the learned signal
    closeness: float = 0.0  # the word overlap with its closest example question alone
    coverage: float = 0.0  # the share of the question's meaning its vocabulary explains
    usual: float = 0.0  # the resemblance its own example questions usually have with it (see _usual)


@dataclass(frozen=True)
class Result:
    """The matcher's verdict: an answer, suggestions, or neither (fallback)."""

    lang: str
    answer_id: str | None
    confidence: float
    suggestions: tuple[str, ...]
    ranked: tuple[Match, ...]
    terms: tuple[str, ...]
    specific: bool = True  # False: its words are ones nearly every entry uses (see decide)
    answer_at: float = 0.0  # the confidence this knowledge base answers at

    @property
    def outcome(self) -> str:
        if self.answer_id is not None:
            return "answer"
        return "suggestions" if self.suggestions else "fallback"


class Index:
    """Everything a query needs, computed (and the confidence fitted) once per knowledge-base load."""

    def __init__(self, kb: KnowledgeBase, *, fit: bool = True, cache: Path | None = None) -> None:  # noqa: C901, PLR0912, PLR0915 — builds the index and fits it in one pass
        """`fit`: fit the confidence on the knowledge base (else a prior); `cache`: a folder where the
        fit of each knowledge-base version is kept (see `calibration.cached`)."""
        self.languages = kb.languages
        topic_words = fold_all(
            [t for e in kb.entries.values() for t in (*e.title.values(), *e.tags)]
        )  # HR's topic words are never stop words ("work from home")
        fillers = frozenset(fold(w) for lang in kb.languages for w in CHAT_FILLERS.get(lang, ()))
        stop = (stop_words_of(kb.languages) - topic_words) | fillers
        self.analyzer = Analyzer(kb.synonyms, kb.languages, stop)
        self.entry_ids: list[str] = [*kb.entries, OUT_OF_SCOPE]
        self.questions: list[str] = []
        self.question_lang: list[str] = []
        question_entry: list[int] = []
        question_terms: list[list[str]] = []
        self.example_counts: list[dict[str, float]] = []  # term -> examples of the entry using it
        self.background: list[dict[str, float]] = []  # term -> what title, tags and answer add
        entry_sizes: list[int] = []
        documents: list[Counter[str]] = []  # per entry: its words, for the learned signal
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
                    q_terms = list(dict.fromkeys(self.analyzer.canonical(folded, lang)))
                    self.questions.append(text)
                    self.question_lang.append(lang)
                    question_entry.append(number)
                    question_terms.append(q_terms)
                    for term in q_terms:
                        counts[term] += 1
                    words.update(folded)
                    size += 1
            per_language = max(size // len(entry_questions), 1) if entry_questions else 1
            background: dict[str, float] = {}
            for term in self._terms_of(answers):
                background[term] = ANSWER_COUNT
            for term in self._terms_of(titles):
                background[term] = max(background.get(term, 0.0), TITLE_COUNT)
            for lang in kb.languages:  # tags are HR's way to say "this word means this entry"
                for tag in tags:
                    for term in self._terms_of({lang: tag}):
                        background[term] = STRENGTH_AT * per_language
            for title in titles.values():
                words.update(tokens(title))
            self.example_counts.append(dict(counts))
            self.background.append(background)
            entry_counts = dict(counts)
            for term, count in background.items():
                entry_counts[term] = max(entry_counts.get(term, 0.0), count)
            entry_sizes.append(per_language)
            documents.append(words)
            all_counts.append(entry_counts)
        self._build_postings(all_counts, question_terms, question_entry, entry_sizes)
        # A word marks a language when its examples use it much more than the other languages' do.
        self.language_words = {
            lang: frozenset(
                w
                for w, n in lang_words[lang].items()
                if n >= 2
                and all(lang_words[o].get(w, 0) * 4 < n for o in kb.languages if o != lang)
                and w not in self.analyzer.stop
            )
            for lang in kb.languages
        }
        # The learned signal: one row per entry, the out-of-scope examples' row last.
        self.space = Space(documents)
        self.n_real = len(kb.entries)
        self.answer_when_sure = kb.answer_when_sure
        self._asked: dict[int, tuple[tuple[Match, ...], tuple[str, ...]]] = {}  # see observe
        known = calibration.cached(cache, kb.version) if cache is not None and fit else None
        usual = known.usual if known is not None and len(known.usual) == self.n_entries else None
        self.usual = np.asarray(usual if usual is not None else self._usual(), dtype=np.float64)
        self.fit = known or (self._fit() if fit else calibration.fit([], kb.answer_when_sure))
        if cache is not None and fit and known is None:
            calibration.remember(cache, kb.version, self.fit)

    def _terms_of(self, texts: Mapping[str, str]) -> set[str]:
        return {t for lang, text in texts.items() for t in self.analyzer.canonical(tokens(text), lang)}

    def _build_postings(
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
        strength = self._strength(e_count, self.sizes[e_entry])
        self.entry_postings = {terms_by_id[t]: (ids, st) for t, ids, st in _group(e_term, e_entry, strength)}
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

    @staticmethod
    def _strength(count: NDArray[np.float64], size: NDArray[np.float64]) -> NDArray[np.float64]:
        """How characteristic a term is of an entry: saturates once several of its examples use it."""
        return np.asarray(np.minimum(1.0, count / (STRENGTH_AT * size)) ** STRENGTH_POWER)

    # ---------------------------------------------------------------------------------------- asking

    def language(self, text: str, hint: str | None) -> str:
        """Which of the knowledge base's languages `text` is in."""
        return detect(text, self.languages, hint, self.language_words)

    def match(self, text: str, *, lang: str, exclude: int | None = None) -> Result:
        """Match `text`; `exclude` (an example question's position) leaves that example out, so
        `kb check` can ask whether the *other* examples would route it to its entry."""
        ranked, terms = self.rank(text, lang=lang, exclude=exclude)
        return decide(lang, ranked, terms, self.fit, self.information(terms))

    def information(self, terms: tuple[str, ...]) -> float:
        return sum(self.idf.get(t, self.unknown_weight) for t in terms)

    def rank(  # noqa: C901, PLR0915 — every signal of one ranking, summed in one place so `why` can show each
        self, text: str, *, lang: str | None = None, exclude: int | None = None
    ) -> tuple[tuple[Match, ...], tuple[str, ...]]:
        """The best-scoring entries (the out-of-scope pseudo-entry among them) and the terms read."""
        lang = lang if lang in self.languages else self.languages[0]
        text = text[:MAX_QUERY_CHARS]
        terms = list(dict.fromkeys(self.analyzer.terms(text, lang)))
        if self.n_entries == 0:
            return (), tuple(terms)
        weights = {t: self.idf.get(t, self.unknown_weight) for t in terms}
        total = sum(weights.values()) or 1.0
        coverage: NDArray[np.float64] = np.zeros(self.n_entries)
        core: NDArray[np.float64] = np.zeros(self.n_entries)
        overlap: NDArray[np.float64] = np.zeros(len(self.questions))
        own = int(self.question_entry[exclude]) if exclude is not None else -1
        left_out = self.question_terms[exclude] if exclude is not None else frozenset()
        for term in terms:
            postings = self.entry_postings.get(term)
            if postings is not None:
                ids, strengths = postings
                coverage[ids] += weights[term] * strengths
                core[ids] += weights[term] * (strengths >= 1.0)
                overlap[self.question_postings.get(term, _EMPTY)] += weights[term]
                if term in left_out and own != self.out_of_scope:  # as if the example were not written
                    self._leave_out(
                        term=term,
                        own=own,
                        ids=ids,
                        strengths=strengths,
                        weight=weights[term],
                        coverage=coverage,
                        core=core,
                    )
        # Matching only an entry's incidental words ("christmas party" in a photo example) is not
        # matching the entry: scale by how much of the matched meaning is the entry's core terms.
        core_share = np.divide(core, coverage, out=np.zeros_like(core), where=coverage > 0)
        coverage /= total
        if self.n_real > ALL_ENTRIES:
            candidates = np.argpartition(-coverage, CANDIDATES)[:CANDIDATES]
            candidates = candidates[coverage[candidates] > 0]
            if self.out_of_scope >= 0:
                candidates = np.union1d(candidates, [self.out_of_scope])
        else:
            candidates = np.arange(self.n_entries)
        best_question = np.full(self.n_entries, -1, dtype=np.int64)
        best_closeness: NDArray[np.float64] = np.zeros(self.n_entries)
        if exclude is not None:
            overlap[exclude] = 0.0
        if candidates.size:
            starts, ends = self.entry_start[candidates], self.entry_end[candidates]
            lengths = ends - starts
            owners = np.repeat(candidates, lengths)
            examples = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(
                lengths.sum()
            )
            # weighted Dice between the question and each example of the candidate entries
            closeness = 2 * overlap[examples] / (total + self.question_weight[examples])
            ascending = np.argsort(closeness, kind="stable")  # the best of each entry is written last
            best_closeness[owners[ascending]] = closeness[ascending]
            best_question[owners[ascending]] = examples[ascending]
        word_score = COVERAGE_WEIGHT * coverage + (1 - COVERAGE_WEIGHT) * best_closeness
        word_score *= 1 - CORE_PENALTY * (1 - core_share)
        resemblance = self._resemblance(text, candidates, exclude, own)
        score = (1 - LEARNED_WEIGHT) * word_score + LEARNED_WEIGHT * resemblance
        if self.out_of_scope >= 0:
            # The out-of-scope examples share no theme, so only closeness to one of them counts, and
            # it is weighed on the word scale: they win when one is closer in words than any entry is
            # (its score is put on the scale of the best entry's).
            oos = self.out_of_scope
            closeness_oos = best_closeness[oos]
            word_score[oos], resemblance[oos] = closeness_oos, 0.0
            real = np.delete(np.arange(self.n_entries), oos)
            top_score = float(score[real].max()) if real.size else 0.0
            top_words = float(word_score[real].max()) if real.size else 0.0
            scale = top_score / top_words if top_words > 0 else 1.0
            score[oos] = OUT_OF_SCOPE_TIES * closeness_oos * scale
        if not terms:  # nothing but filler words and unknown scripts: nothing to go on
            score[:] = 0.0
        top = np.argpartition(-score, 5)[:5] if self.n_entries > 5 else np.arange(self.n_entries)
        top = top[np.argsort(-score[top], kind="stable")]
        ranked = tuple(
            Match(
                self.entry_ids[i],
                round(float(score[i]), 4),
                self.questions[best_question[i]] if best_question[i] >= 0 else "",
                round(float(word_score[i]), 4),
                round(float(resemblance[i]), 4),
                round(float(best_closeness[i]), 4),
                round(float(coverage[i]), 4),
                round(float(self.usual[i]), 4),
            )
            for i in top
            if score[i] > 0
        )
        return ranked, tuple(terms)

    def _leave_out(
        self,
        *,
        term: str,
        own: int,
        ids: NDArray[np.int64],
        strengths: NDArray[np.float64],
        weight: float,
        coverage: NDArray[np.float64],
        core: NDArray[np.float64],
    ) -> None:
        at = np.flatnonzero(ids == own)
        if not at.size:
            return
        before = float(strengths[at[0]])
        count = max(self.example_counts[own].get(term, 0.0) - 1, self.background[own].get(term, 0.0))
        after = float(self._strength(np.asarray([count]), self.sizes[own : own + 1])[0])
        coverage[own] += weight * (after - before)
        core[own] += weight * ((after >= 1.0) - (before >= 1.0))

    def _resemblance(
        self, text: str, candidates: NDArray[np.int64], exclude: int | None, own: int
    ) -> NDArray[np.float64]:
        out: NDArray[np.float64] = np.zeros(self.n_entries)
        query = self.space.vector(tokens(text))
        if self.n_real > ALL_ENTRIES:
            out[candidates] = self.space.cosines(query, candidates)
        else:
            out[:] = self.space.all_cosines(query)
        if exclude is not None:
            out[own] = self.space.cosine_without(query, own, tokens(self.questions[exclude]))
        return out

    # ----------------------------------------------------------------------------------- fitting

    def observe(self, position: int) -> tuple[Observation, Observation | None, Result]:
        """Ask example `position` with its own copy left out: what the bot would do, and was it right.

        Also, from the same ranking, as if its whole entry did not exist: a question the knowledge
        base does not cover, in the words of its own field (the second observation; None for an
        out-of-scope example)."""
        own = self.entry_ids[self.question_entry[position]]
        lang = self.question_lang[position]
        known = self._asked.get(position)
        ranked, terms = known or self.rank(self.questions[position], lang=lang, exclude=position)
        self._asked[position] = (ranked, terms)  # the fit's rankings serve `kb check` again
        information = self.information(terms)
        result = decide(lang, ranked, terms, self.fit, information)
        real = [m for m in ranked if m.entry_id != OUT_OF_SCOPE]
        observation = Observation(
            *_signals(ranked),
            right=bool(real) and real[0].entry_id == own,
            offered=own in _choices(ranked),
            information=information,
            closeness=real[0].closeness if real else 0.0,
            coverage=real[0].coverage if real else 0.0,
            familiar=_familiar(real[0]) if real else 0.0,
            out_of_scope=own == OUT_OF_SCOPE,
            declined=bool(ranked) and ranked[0].entry_id == OUT_OF_SCOPE,
        )
        if own == OUT_OF_SCOPE:
            return observation, None, result
        others = tuple(m for m in ranked if m.entry_id != own)
        orphan = Observation(
            *_signals(others),
            right=False,
            offered=False,
            information=information,
            closeness=others[0].closeness if others else 0.0,
            coverage=others[0].coverage if others else 0.0,
            familiar=_familiar(others[0]) if others else 0.0,
            orphan=True,
            declined=not others or others[0].entry_id == OUT_OF_SCOPE,
        )
        return observation, orphan, result

    def sample(self) -> list[int]:
        """The examples asked at load time: spread evenly over entries, every out-of-scope example."""
        positions = list(range(len(self.questions)))
        real = [p for p in positions if self.question_entry[p] != self.out_of_scope]
        oos = [p for p in positions if self.question_entry[p] == self.out_of_scope]
        step = max(1, math.ceil(len(real) / FIT_SAMPLE))
        return real[::step] + oos[:FIT_SAMPLE]

    def _usual(self) -> NDArray[np.float64]:
        """Per entry, the resemblance its example questions have with it when each is left out: some
        entries' examples are all alike, others' vary. Measured on up to USUAL_SAMPLE examples spread over
        the entries; an entry's own figure is pulled towards the average of all (USUAL_PRIOR)."""
        real = [p for p in range(len(self.questions)) if self.question_entry[p] != self.out_of_scope]
        step = max(1, math.ceil(len(real) / USUAL_SAMPLE))
        sums, counts = np.zeros(self.n_entries), np.zeros(self.n_entries)
        for position in real[::step]:
            own, words = int(self.question_entry[position]), tokens(self.questions[position])
            sums[own] += self.space.cosine_without(self.space.vector(words), own, words)
            counts[own] += 1
        average = float(sums.sum() / max(counts.sum(), 1.0))
        return np.asarray((sums + USUAL_PRIOR * average) / (counts + USUAL_PRIOR))

    def _fit(self) -> Fit:
        self.fit = calibration.fit([], self.answer_when_sure)  # a prior, while observing
        observations: list[Observation] = []
        for position in self.sample():
            observation, orphan, _ = self.observe(position)
            observations += [observation] if orphan is None else [observation, orphan]
        fitted = calibration.fit(observations, self.answer_when_sure)
        return replace(fitted, usual=tuple(float(u) for u in self.usual))


_EMPTY = np.zeros(0, dtype=np.int64)


def _signals(ranked: tuple[Match, ...]) -> tuple[float, float, float, float]:
    """What the confidence is read from (`calibration.signals`): the best entry's score, its lead
    over the next one (the out-of-scope examples count as one), and its lead in each signal alone."""
    if not ranked:
        return (0.0, 0.0, 0.0, 0.0)
    best, rest = ranked[0], ranked[1:]
    return (
        best.score,
        best.score - (rest[0].score if rest else 0.0),
        best.words - max((m.words for m in rest), default=0.0),
        best.resemblance - max((m.resemblance for m in rest), default=0.0),
    )


def _familiar(match: Match) -> float:
    """How much closer (or further) the question is to the entry than its own examples usually are."""
    return match.resemblance - match.usual


def _choices(ranked: tuple[Match, ...]) -> tuple[str, ...]:
    real = [m for m in ranked if m.entry_id != OUT_OF_SCOPE]
    if not real:
        return ()
    # Close by either signal: the learned one does not know HR's synonyms ("pictures" for "photos").
    floor, words_floor = real[0].score * SUGGEST_WITHIN, max(m.words for m in real) * SUGGEST_WITHIN
    close = [m for m in real if m.score >= floor or (m.words >= words_floor and m.score > 0.5 * floor)]
    return tuple(m.entry_id for m in close)[:MAX_SUGGESTIONS]


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


def decide(
    lang: str, ranked: tuple[Match, ...], terms: tuple[str, ...], fit: Fit, information: float
) -> Result:
    """Answer, suggest or fall back, from the ranked candidates and the fitted confidence.

    A question that is not specific (less information than nearly every example) is never answered
    outright, however well it scores, unless there is only one entry it could mean.
    """
    if ranked and ranked[0].entry_id == OUT_OF_SCOPE:  # closest to something we know we don't cover
        rest = tuple(m for m in ranked if m.entry_id != OUT_OF_SCOPE)
        return Result(lang, None, 0.0, (), rest, terms, answer_at=fit.answer_at)
    if not ranked or all(m.words == 0 for m in ranked):  # not one word in common: look-alike letters only
        return Result(lang, None, 0.0, (), ranked, terms, answer_at=fit.answer_at)
    best = ranked[0]
    values = (
        *_signals(ranked),
        calibration.informative(information),
        best.closeness,
        best.coverage,
        _familiar(best),
    )
    confidence = fit.confidence(values)
    specific = information >= fit.min_information
    suggestions = _choices(ranked)
    verdict = calibration.verdict_of(fit, values, max(information, fit.min_information))
    if verdict == "answer" and (specific or len(suggestions) < 2):
        return Result(lang, best.entry_id, confidence, (), ranked, terms, answer_at=fit.answer_at)
    if verdict == "fallback" and (specific or len(suggestions) < 2):
        # (a vague question in words several entries use is offered those entries: it is about them)
        return Result(lang, None, confidence, (), ranked, terms, specific, fit.answer_at)
    return Result(lang, None, confidence, suggestions, ranked, terms, specific, fit.answer_at)


def normalise_lang(hint: str | None) -> str | None:
    """A platform locale ("nb-NO", "no", "sv_SE", "en-GB") as a language code policybot analyses."""
    return normalise(hint)
