"""Finds the knowledge-base entry a chat question is about, or decides that none is.

Three signals are combined, each computed from the knowledge base that is loaded:

* coverage: how much of the question's meaning (IDF-weighted terms, see `bot.analysis`) the entry's
  vocabulary explains; a question about something else leaves most of its weight unexplained;
* closeness: the weighted overlap with the entry's single best example question;
* resemblance (learned): cosine similarity with the centroid of the entry's examples in a TF-IDF space
  of character n-grams and words (`bot.similarity`).

How sure the bot is, and so whether it answers, offers "did you mean" or says it does not know, is
fitted at load time on the knowledge base's own examples (`bot.calibration`) and decided in
`bot.decision`. The weights of the signals were chosen by cross-validation over several knowledge
bases (`bench/cross_validate.py`).

The index is built once per knowledge-base load (`bot.postings` for words, `bot.similarity` for the
learned space); a query touches only the posting lists of its own terms (numpy scatter-adds) and the
centroid rows of its candidate entries.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import cast

import numpy as np
from numpy.typing import NDArray

from bot import calibration
from bot.analysis import Analyzer, fold_all
from bot.calibration import Fit, Observation
from bot.decision import OUT_OF_SCOPE, Match, Result, choices, decide, familiar, signals
from bot.knowledge import KnowledgeBase
from bot.languages import CHAT_FILLERS, detect, fold, normalise, stem, stop_words_of, tokens
from bot.postings import Postings, strength
from bot.similarity import Space

Vector = tuple[NDArray[np.int64], NDArray[np.float64]]  # a question in the learned space (`Space.vector`)

__all__ = [
    "MAX_QUERY_CHARS",
    "OUT_OF_SCOPE",
    "STOPWORDS",
    "Analyzer",
    "Index",
    "Match",
    "Result",
    "decide",
    "fold",
    "stem",
]

STOPWORDS = CHAT_FILLERS  # the chat filler of English and Norwegian (bot.report groups questions with it)
CANDIDATES = 64  # with more entries than ALL_ENTRIES, only this many are scored in full per question
ALL_ENTRIES = 256
USUAL_SAMPLE = 1000  # example questions compared with their own entry to learn how close they usually are
USUAL_PRIOR = 1.0  # an entry's own figure weighs against this many examples at the average of all
USUAL_POWER = 0.25  # how strongly resemblance is read against it (bench/cross_validate.py)
# Example questions asked at load time to fit the confidence (spread over entries): more make a surer
# fit, and a knowledge base small enough to be scored whole is cheap to ask (a large one: 400, ~0.5 s).
FIT_SAMPLE, FIT_SAMPLE_LARGE = 1000, 400
# Weights chosen by bench/cross_validate.py (over the shipped knowledge base, variants of it and BANKING77
# knowledge bases of 5, 10 and 20 examples per entry; never one knowledge base alone).
LEARNED_WEIGHT = 0.8  # share of the score that is resemblance (the learned signal)
COVERAGE_WEIGHT = 0.5  # within the word signal: coverage vs closeness
CORE_PENALTY = 0.5  # how much a match on incidental words alone is discounted
MAX_QUERY_CHARS = 1000  # a chat question is a few hundred characters; the rest is not read
# An out-of-scope example about as close as an entry does not win: the entry is offered, as a "did you
# mean" at most ("tiktok" alone is a vague question about a topic the guidelines cover).
OUT_OF_SCOPE_TIES = 0.95


class Index:
    """Everything a query needs, computed (and the confidence fitted) once per knowledge-base load."""

    def __init__(self, kb: KnowledgeBase, *, fit: bool = True, cache: Path | None = None) -> None:
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
        self.postings = Postings(kb, self.analyzer)
        # The learned signal: one row per entry, the out-of-scope examples' row last.
        self.n_real = len(kb.entries)
        self.space = Space(
            self.postings.documents, self.postings.n_entries, by_feature=self.n_real <= ALL_ENTRIES
        )
        del self.postings.documents  # only the space needed them
        self.out_of_scope = self.postings.out_of_scope
        self.n_entries = self.postings.n_entries
        self.answer_when_sure = kb.answer_when_sure
        known = calibration.cached(cache, kb.version) if cache is not None and fit else None
        usual = known.usual if known is not None and len(known.usual) == self.n_entries else None
        # What `_usual` worked out for an example, kept for the fit, which asks it again (see `_resemblance`).
        self._alone: dict[int, tuple[Vector, float]] = {}
        self.usual = np.asarray(
            usual if usual is not None else self._usual(keep=fit and known is None), dtype=np.float64
        )
        # Resemblance is read against what is usual for the entry: an entry whose examples vary is never
        # as close to a question as one whose examples are all alike (USUAL_POWER: bench/cross_validate.py).
        average = float(self.usual[: self.n_real].mean()) if self.n_real else 1.0
        self.usual_scale = (average / np.maximum(self.usual, 1e-6)) ** USUAL_POWER
        self.fit = known or (self._fit() if fit else calibration.fit([], kb.answer_when_sure))
        if cache is not None and fit and known is None:
            calibration.remember(cache, kb.version, self.fit)
        self._alone.clear()
        give_back_memory()

    @property
    def questions(self) -> list[str]:
        """Every example question (the out-of-scope examples last), each entry's together."""
        return self.postings.questions

    @property
    def question_entry(self) -> NDArray[np.int64]:
        """For each example question, the position of its entry in `entry_ids`."""
        return self.postings.question_entry

    # ---------------------------------------------------------------------------------------- asking

    def language(self, text: str, hint: str | None) -> str:
        """Which of the knowledge base's languages `text` is in."""
        return detect(text, self.languages, hint, self.postings.language_words)

    def match(self, text: str, *, lang: str, exclude: int | None = None) -> Result:
        """Match `text`; `exclude` (an example question's position) leaves that example out, so
        `kb check` can ask whether the *other* examples would route it to its entry."""
        ranked, terms = self.rank(text, lang=lang, exclude=exclude)
        return decide(lang, ranked, terms, self.fit, self.information(terms))

    def information(self, terms: tuple[str, ...]) -> float:
        return sum(self._weights(terms).values())

    def _weights(self, terms: tuple[str, ...] | list[str]) -> dict[str, float]:
        """How much meaning each term carries (its inverse document frequency)."""
        known, weight, unknown = (
            self.postings.term_ids,
            self.postings.term_weight,
            self.postings.unknown_weight,
        )
        return {t: float(weight[i]) if (i := known.get(t)) is not None else unknown for t in terms}

    def rank(  # noqa: PLR0915 — every signal of one ranking, summed in one place so `why` can show each
        self, text: str, *, lang: str | None = None, exclude: int | None = None
    ) -> tuple[tuple[Match, ...], tuple[str, ...]]:
        """The best-scoring entries (the out-of-scope pseudo-entry among them) and the terms read."""
        lang = lang if lang in self.languages else self.languages[0]
        text = text[:MAX_QUERY_CHARS]
        terms = list(dict.fromkeys(self.analyzer.terms(text, lang)))
        if self.n_entries == 0:
            return (), tuple(terms)
        p = self.postings
        weights = self._weights(terms)
        total = sum(weights.values()) or 1.0
        coverage: NDArray[np.float64] = np.zeros(self.n_entries)
        core: NDArray[np.float64] = np.zeros(self.n_entries)
        touched: list[NDArray[np.int32]] = []  # the examples using each term, and the term's weight
        touched_weight: list[float] = []
        own = int(self.question_entry[exclude]) if exclude is not None else -1
        left_out = set(p.question_terms(exclude).tolist()) if exclude is not None else set()
        for term in terms:
            t = p.term_ids.get(term)
            if t is None:
                continue
            a, b = p.entry_ptr[t], p.entry_ptr[t + 1]
            ids, strengths = p.entry_ids[a:b], p.entry_strength[a:b]
            coverage[ids] += weights[term] * strengths
            core[ids] += weights[term] * (strengths >= 1.0)
            touched.append(p.example_ids[p.example_ptr[t] : p.example_ptr[t + 1]])
            touched_weight.append(weights[term])
            if t in left_out and own != self.out_of_scope:  # as if the example were not written
                self._leave_out(t, own, weights[term], coverage=coverage, core=core)
        # Matching only an entry's incidental words ("christmas party" in a photo example) is not
        # matching the entry: scale by how much of the matched meaning is the entry's core terms.
        core_share = np.divide(core, coverage, out=np.zeros_like(core), where=coverage > 0)
        coverage /= total
        if self.n_real > ALL_ENTRIES:
            candidates = np.argpartition(-coverage, CANDIDATES)[:CANDIDATES]
            candidates = candidates[coverage[candidates] > 0]
            if self.out_of_scope >= 0:
                candidates = np.sort(np.r_[candidates[candidates != self.out_of_scope], self.out_of_scope])
        else:
            candidates = np.arange(self.n_entries)
        best_question, best_closeness = self._closest(touched, touched_weight, total, candidates, exclude)
        word_score = COVERAGE_WEIGHT * coverage + (1 - COVERAGE_WEIGHT) * best_closeness
        word_score *= 1 - CORE_PENALTY * (1 - core_share)
        resemblance = self._resemblance(text, candidates, exclude, own)
        score = (1 - LEARNED_WEIGHT) * word_score + LEARNED_WEIGHT * resemblance * self.usual_scale
        if self.out_of_scope >= 0:
            # The out-of-scope examples share no theme, so only closeness to one of them counts, and
            # it is weighed on the word scale: they win when one is closer in words than any entry is
            # (its score is put on the scale of the best entry's).
            oos = self.out_of_scope
            closeness_oos = best_closeness[oos]
            word_score[oos], resemblance[oos] = closeness_oos, 0.0
            real = slice(0, oos)  # (the out-of-scope examples' row is the last)
            top_score = float(score[real].max()) if oos else 0.0
            top_words = float(word_score[real].max()) if oos else 0.0
            scale = top_score / top_words if top_words > 0 else 1.0
            score[oos] = OUT_OF_SCOPE_TIES * closeness_oos * scale
        if not terms:  # nothing but filler words and unknown scripts: nothing to go on
            score[:] = 0.0
        top = np.argpartition(-score, 5)[:5] if self.n_entries > 5 else np.arange(self.n_entries)
        top = top[np.argsort(-score[top], kind="stable")]
        top = top[score[top] > 0]
        columns = (score, word_score, resemblance, best_closeness, coverage, self.usual)
        values = [[round(v, 4) for v in column[top].tolist()] for column in columns]  # (Python floats)
        ranked = tuple(
            Match(
                self.entry_ids[i],
                values[0][k],
                self.questions[q] if (q := int(best_question[i])) >= 0 else "",
                *(column[k] for column in values[1:]),
            )
            for k, i in enumerate(top.tolist())
        )
        return ranked, tuple(terms)

    def _closest(
        self,
        touched: list[NDArray[np.int32]],
        touched_weight: list[float],
        total: float,
        candidates: NDArray[np.int64],
        exclude: int | None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Per candidate entry, its example closest to the question (weighted Dice over the shared
        terms; the last of equals) and how close; only examples sharing a term are looked at."""
        p = self.postings
        best_question = np.full(self.n_entries, -1, dtype=np.int64)
        best_closeness: NDArray[np.float64] = np.zeros(self.n_entries)
        if not candidates.size:
            return best_question, best_closeness
        has_examples = candidates[p.entry_end[candidates] > p.entry_start[candidates]]
        best_question[has_examples] = p.entry_end[has_examples] - 1  # none close: the last example
        if not touched:
            return best_question, best_closeness
        examples = np.concatenate(touched)
        weight = np.repeat(touched_weight, [len(ids) for ids in touched])
        if self.n_real > ALL_ENTRIES:
            wanted = np.zeros(self.n_entries, dtype=bool)
            wanted[candidates] = True
            keep = wanted[p.question_entry[examples]]
            examples, weight = examples[keep], weight[keep]
        if exclude is not None:
            keep = examples != exclude
            examples, weight = examples[keep], weight[keep]
        if self.n_real > ALL_ENTRIES:
            examples, where = np.unique(examples, return_inverse=True)
            overlap = np.bincount(where.reshape(-1), weights=weight, minlength=len(examples))
        else:  # over all examples: cheaper than sorting them (every question comes here); same sums
            every = len(p.question_entry)
            overlap = np.bincount(examples, weights=weight, minlength=every)
            examples = np.flatnonzero(np.bincount(examples, minlength=every)).astype(np.int32)
            overlap = overlap[examples]
        closeness = 2 * overlap / (total + p.question_weight[examples])
        ascending = np.lexsort((examples, closeness))  # the best of each entry is written last
        owners = p.question_entry[examples[ascending]]
        best_closeness[owners] = closeness[ascending]
        best_question[owners] = examples[ascending]
        return best_question, best_closeness

    def _leave_out(
        self, term: int, own: int, weight: float, *, coverage: NDArray[np.float64], core: NDArray[np.float64]
    ) -> None:
        """Entry `own`'s coverage of `term` as if one of its examples using it were not written."""
        p = self.postings
        a, b = p.entry_ptr[term], p.entry_ptr[term + 1]
        at = np.flatnonzero(p.entry_ids[a:b] == own)
        if not at.size:
            return
        at += a
        before = float(p.entry_strength[at[0]])
        count = max(float(p.entry_example[at[0]]) - 1, float(p.entry_background[at[0]]))
        after = float(strength(np.asarray([count]), p.sizes[own : own + 1])[0])
        coverage[own] += weight * (after - before)
        core[own] += weight * ((after >= 1.0) - (before >= 1.0))

    def _resemblance(
        self, text: str, candidates: NDArray[np.int64], exclude: int | None, own: int
    ) -> NDArray[np.float64]:
        out: NDArray[np.float64] = np.zeros(self.n_entries)
        # The fit asks an example `_usual` has already compared with its own entry: 0.1 s of 0.4 saved
        # on the shipped knowledge base.
        alone = self._alone.get(exclude) if exclude is not None else None
        if alone is not None and text != self.questions[cast("int", exclude)]:
            alone = None
        query = alone[0] if alone is not None else self.space.vector(tokens(text))
        if self.n_real > ALL_ENTRIES:
            out[candidates] = self.space.cosines(query, candidates)
        else:
            out[:] = self.space.all_cosines(query)
        if alone is not None:
            out[own] = alone[1]
        elif exclude is not None:
            out[own] = self.space.cosine_without(query, own, tokens(self.questions[exclude]))
        return out

    # ----------------------------------------------------------------------------------- fitting

    def observe(self, position: int) -> tuple[Observation, Observation | None, Result]:
        """Ask example `position` with its own copy left out: what the bot would do, and was it right.

        Also, from the same ranking, as if its whole entry did not exist: a question the knowledge
        base does not cover, in the words of its own field (the second observation; None for an
        out-of-scope example)."""
        own = self.entry_ids[self.question_entry[position]]
        lang = self.postings.question_lang[position]
        # Ranked anew each time: keeping the fit's rankings for `kb check` held 1.7 MiB of objects (0.3 MiB
        # of RSS) in every serving process for the shipped knowledge base, and grew with each reload's
        # checks; `kb check` pays for it, 1.23 -> 1.45 s of CPU.
        ranked, terms = self.rank(self.questions[position], lang=lang, exclude=position)
        information = self.information(terms)
        result = decide(lang, ranked, terms, self.fit, information)
        real = [m for m in ranked if m.entry_id != OUT_OF_SCOPE]
        observation = Observation(
            *signals(ranked),
            right=bool(real) and real[0].entry_id == own,
            offered=own in choices(ranked),
            information=information,
            closeness=real[0].closeness if real else 0.0,
            coverage=real[0].coverage if real else 0.0,
            familiar=familiar(real[0]) if real else 0.0,
            out_of_scope=own == OUT_OF_SCOPE,
            declined=bool(ranked) and ranked[0].entry_id == OUT_OF_SCOPE,
        )
        if own == OUT_OF_SCOPE:
            return observation, None, result
        others = tuple(m for m in ranked if m.entry_id != own)
        orphan = Observation(
            *signals(others),
            right=False,
            offered=False,
            information=information,
            closeness=others[0].closeness if others else 0.0,
            coverage=others[0].coverage if others else 0.0,
            familiar=familiar(others[0]) if others else 0.0,
            orphan=True,
            declined=not others or others[0].entry_id == OUT_OF_SCOPE,
        )
        return observation, orphan, result

    def sample(self) -> list[int]:
        """The examples asked at load time: spread evenly over entries, every out-of-scope example."""
        unanswered = self.question_entry == self.out_of_scope
        real: list[int] = np.flatnonzero(~unanswered).tolist()
        oos: list[int] = np.flatnonzero(unanswered).tolist()
        budget = FIT_SAMPLE if self.n_real <= ALL_ENTRIES else FIT_SAMPLE_LARGE
        step = max(1, math.ceil(len(real) / budget))
        return real[::step] + oos[:budget]

    def _usual(self, *, keep: bool = False) -> NDArray[np.float64]:
        """Per entry, the resemblance its example questions have with it when each is left out: some
        entries' examples are all alike, others' vary. Measured on up to USUAL_SAMPLE examples spread over
        the entries; an entry's own figure is pulled towards the average of all (USUAL_PRIOR). `keep`:
        keep each example's vector and resemblance for the fit that follows."""
        real: list[int] = np.flatnonzero(self.question_entry != self.out_of_scope).tolist()
        step = max(1, math.ceil(len(real) / USUAL_SAMPLE))
        sums, counts = np.zeros(self.n_entries), np.zeros(self.n_entries)
        for position in real[::step]:
            own, words = int(self.question_entry[position]), tokens(self.questions[position])
            query = self.space.vector(words)
            cosine = self.space.cosine_without(query, own, words)
            if keep:
                self._alone[position] = (query, cosine)
            sums[own] += cosine
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


def give_back_memory() -> None:
    """Return the memory a build used on the way to the operating system: glibc keeps what Python and
    numpy free for the process (about a hundred MiB after a 10 000-entry build) unless asked."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return cast("Callable[[int], int]", ctypes.CDLL(None).malloc_trim)
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS, Windows): nothing to ask
        return None


def normalise_lang(hint: str | None) -> str | None:
    """A platform locale ("nb-NO", "no", "sv_SE", "en-GB") as a language code policybot analyses."""
    return normalise(hint)
