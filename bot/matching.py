"""Finds the knowledge-base entry a chat question is about, or decides that none is.

How people type in chat is messy: typos, nicknames ("fb", "insta"), synonyms ("boss"/"sjef"),
Norwegian with or without æøå and written as compounds ("jobbmobil"). Each question goes through
one analysis step that folds all of that into canonical terms, then two signals are combined:

* coverage: how much of the question's meaning (IDF-weighted terms) the entry's vocabulary explains;
  a question about something else leaves most of its weight unexplained, which is what makes the
  bot say "I don't know" instead of guessing;
* closeness: the weighted overlap with the entry's single best example question.

The index is built once per knowledge-base load; a query touches only the posting lists of its own
terms (numpy scatter-adds), never every stored question.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz, process

from bot.knowledge import LANGS, KnowledgeBase

# Confidence is calibrated: the combined score (0..1) maps to the probability that the best entry is
# right, fitted (isotonic regression) on the development set and the knowledge base's own examples
# asked leave-one-out, by `python bench/eval_matching.py --calibrate`, which prints this table.
CALIBRATION: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (0.21, 0.4),
    (0.234, 0.5),
    (0.279, 0.8),
    (0.307, 0.889),
    (0.331, 0.909),
    (0.38, 0.97),
    (0.423, 0.979),
    (0.459, 0.986),
    (0.579, 0.987),
    (0.613, 0.989),
    (0.805, 0.995),
    (1.0, 1.0),
)
_CALIBRATION_SCORES = np.asarray([score for score, _ in CALIBRATION])
_CALIBRATION_PROBABILITIES = np.asarray([probability for _, probability in CALIBRATION])
ANSWER_AT = 0.6  # calibrated confidence at or above which the bot answers (if no runner-up is close)
MARGIN = 0.02  # a runner-up within this score distance makes the answer a "did you mean" instead
SUGGEST_AT = 0.2  # confidence at or above which an entry may be suggested; below: honest fallback
# The least information (summed IDF of its terms) a question must carry to be answered outright: about
# two words that are not in nearly every entry. Below it the question fits several entries ("can I post
# about work?") and the bot offers a "did you mean", unless only one entry would be offered. Set below
# every question of the dev set and every example asked leave-one-out, so it changes none of them.
MIN_INFORMATION = 1.5
SUGGEST_WITHIN = 0.20  # suggestions are the entries within this score distance of the best one
MAX_SUGGESTIONS = 3
LANGUAGE_SAMPLE = 20_000  # example questions per language read to learn each language's own words
CANDIDATES = 64  # entries whose examples are compared one by one with a question
COVERAGE_WEIGHT = 0.5
TITLE_COUNT = 1.0  # a title or tag word counts like this many example questions
ANSWER_COUNT = 0.5  # a word of the answer text counts like this many example questions
STRENGTH_AT = 0.25  # a term in this share of an entry's examples is fully characteristic of it
STRENGTH_POWER = 0.5
UNKNOWN_WEIGHT = 1.0
OUT_OF_SCOPE_WEIGHT = 1.0  # how much closeness to an out-of-scope example counts against real entries
CORE_PENALTY = 0.5  # how much a match on incidental words alone is discounted

PREFIX_AT_LEAST = 5  # letters an unknown word must share with a known one to take its meaning
MAX_QUERY_CHARS = 1000  # a chat question is a few hundred characters; the rest is not read

_FOLD = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "ä": "ae", "ö": "o", "ß": "ss"})
_TOKEN = re.compile(r"[a-z0-9]+")
_SUFFIXES = ("heten", "ene", "ane", "ing", "ers", "het", "ene", "er", "en", "et", "es", "ed", "s", "e", "a")

STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "a an the i me my mine im i'm we us our you your yours he him his she her it its they them their "
        "is am are was were be been being do does did doing have has had having can could should would "
        "will shall may might must to of in on at for from with about as by into over under and or but "
        "if so than then that this these those there here what which who whom whose when where why "
        "not no yes ok okay just also still very really too any some all anything something someone "
        "get got let lets please hi hello hey thanks thank up out off again ever even only allowed "
        "allow fine alright right wrong want wanna make know think tell keep now one someone something "
        "thing things stuff lot kind sort guess maybe actually basically dont don isnt isn cant wont won "
        "doesnt doesn didnt didn ll ve re would'nt guys anyone".split()
    ),
    "nb": frozenset(
        "jeg meg min mitt mine vi oss vår vårt våre du deg din ditt dine han ham hans hun henne hennes "
        "den det de dem deres seg sin sitt sine er var vært være blir ble bli har hadde ha kan kunne "
        "skal skulle vil ville må måtte bør burde får fikk få og eller men om at som til fra med på i "
        "av for hos ved under over etter før en ei et noe noen nå da så her der hva hvem hvilken hvilke "
        "hvor hvorfor når ikke ja nei bare også jo vel litt mye lov lø greit ok okei hei takk "
        "dette disse denne kanskje egentlig sånn slik man gjøre gjør gjorde ting veldig hvis lyst igjen "
        "nok liksom typ altså mest noen noe".split()
    ),
}
# Words that mark a language even though they carry no topic (used to detect the language).
_MARKERS: dict[str, frozenset[str]] = {
    "en": frozenset("i my me is are can should do does the what how if to of about when who with".split()),
    "nb": frozenset(
        "jeg meg min mitt er kan skal bør må det hva hvordan hvis om på av til ikke noe når med".split()
    ),
}


def fold(text: str) -> str:
    """Lower-case and fold æøå (and other accents) to ASCII; "aa" is how å is typed without it."""
    text = text.lower().translate(_FOLD)
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.replace("aa", "a")


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    """A deliberately light stemmer shared by English and Norwegian; applied alike on both sides."""
    while len(token) > 4:
        for suffix in _SUFFIXES:
            if token.endswith(suffix) and len(token) - len(suffix) >= 3:
                token = token[: -len(suffix)]
                break
        else:
            break
    return token


_FOLDED_STOPWORDS = {lang: frozenset(fold(w) for w in words) for lang, words in STOPWORDS.items()}
_ALL_STOPWORDS = _FOLDED_STOPWORDS["en"] | _FOLDED_STOPWORDS["nb"]
_FOLDED_MARKERS = {lang: frozenset(fold(w) for w in words) for lang, words in _MARKERS.items()}


@dataclass(frozen=True)
class Match:
    entry_id: str
    score: float
    question: str  # the example question closest to what was asked


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

    @property
    def outcome(self) -> str:
        if self.answer_id is not None:
            return "answer"
        return "suggestions" if self.suggestions else "fallback"


class Analyzer:
    """Turns text into canonical terms: folded, tokenised, synonym-mapped, stemmed, compounds split,
    typos corrected against the knowledge base's own vocabulary."""

    def __init__(self, synonyms: Mapping[str, Iterable[str]]) -> None:
        self.words: dict[str, str] = {}  # a spelling HR listed -> its canonical term
        self.stems: dict[str, str] = {}  # the stem of a listed spelling -> its canonical term
        self.phrases: dict[tuple[str, ...], str] = {}
        # The canonical term is the group's key itself, unstemmed, so two keys never collapse into one
        # ("employer" and "employee" would share a stem).
        self.targets = frozenset("".join(_TOKEN.findall(fold(str(key)))) for key in synonyms)
        for canonical, variants in synonyms.items():
            target = "".join(_TOKEN.findall(fold(str(canonical))))
            for variant in (canonical, *variants):
                tokens = tuple(_TOKEN.findall(fold(str(variant))))
                if len(tokens) == 1:
                    self.words[tokens[0]] = target
                    if len(stem(tokens[0])) >= 5:  # a short stem ("last", "meld") is too often another word
                        self.stems.setdefault(stem(tokens[0]), target)
                elif tokens:
                    self.phrases[tokens] = target
        self.longest_phrase = max((len(p) for p in self.phrases), default=1)
        self.phrase_starts = frozenset(p[0] for p in self.phrases)
        self.vocabulary: frozenset[str] = frozenset()
        self.language_words: dict[str, frozenset[str]] = {}
        self._by_length: dict[tuple[str, int], list[str]] = {}  # (first letter, length) -> spellings
        self._spellings: dict[str, str] = {}
        self._prefixes: dict[str, str] = {}
        self._correct = lru_cache(maxsize=50_000)(self._correct_uncached)
        self._term = lru_cache(maxsize=200_000)(self._term_uncached)

    def set_vocabulary(self, vocabulary: Iterable[str]) -> None:
        self.vocabulary = frozenset(vocabulary)
        # Typos are corrected towards known terms and towards every spelling of a synonym.
        self._spellings = {term: term for term in self.vocabulary}
        for variant, canonical in self.words.items():
            if canonical in self.vocabulary and len(variant) >= 4:
                self._spellings.setdefault(variant, canonical)
        # Unambiguous prefixes of known spellings, for inflections the stemmer does not know
        # ("nedbemanningen" meets "nedbemanne").
        prefixes: dict[str, str | None] = {}
        for word, canonical in self._spellings.items():
            for size in range(PREFIX_AT_LEAST, len(word) + 1):
                known = prefixes.setdefault(word[:size], canonical)
                if known is not None and known != canonical:
                    prefixes[word[:size]] = None  # shared by two meanings: tells nothing
        self._prefixes = {prefix: term for prefix, term in prefixes.items() if term is not None}
        by_length: dict[tuple[str, int], list[str]] = defaultdict(list)
        for word in self._spellings:
            by_length[word[0], len(word)].append(word)
        self._by_length = dict(by_length)
        self._correct.cache_clear()

    def tokens(self, text: str) -> list[str]:
        return _TOKEN.findall(fold(text))

    def canonical(self, tokens: list[str]) -> list[str]:
        """Synonyms (phrases first), stop words out, stems in."""
        if self.phrase_starts.isdisjoint(tokens):  # the common case: no synonym phrase can start here
            return [term for term in map(self._term, tokens) if term]
        out: list[str] = []
        i = 0
        while i < len(tokens):
            if tokens[i] not in self.phrase_starts:
                term = self._term(tokens[i])
                i += 1
                if term:
                    out.append(term)
                continue
            for size in range(min(self.longest_phrase, len(tokens) - i), 1, -1):
                target = self.phrases.get(tuple(tokens[i : i + size]))
                if target is not None:
                    out.append(target)
                    i += size
                    break
            else:
                term = self._term(tokens[i])
                i += 1
                if term:
                    out.append(term)
        return out

    def _term_uncached(self, token: str) -> str:
        """One word's canonical term, or "" for a stop word.

        A spelling HR listed wins; a stop word is dropped before stems are compared, so a synonym
        whose stem happens to be a filler word ("stillinger" -> "still") cannot give it a meaning."""
        mapped = self.words.get(token)
        if mapped is not None:
            return mapped
        if token in _ALL_STOPWORDS or (len(token) == 1 and not token.isdigit()):
            return ""
        stemmed = stem(token)
        return self.words.get(stemmed) or self.stems.get(stemmed) or stemmed

    def terms(self, text: str) -> list[str]:
        """The terms of a query: canonical terms, with unknown ones split or typo-corrected."""
        out: list[str] = []
        for term in self.canonical(self.tokens(text)):
            if term in self.vocabulary:
                out.append(term)
            else:
                out.extend(self._correct(term))
        return out

    def _correct_uncached(self, term: str) -> tuple[str, ...]:
        parts = self.split_compound(term)
        if parts:
            return parts
        if len(term) >= 5 and not term.isdigit():
            # A typo keeps the first letter and length roughly; anything looser "corrects" real words.
            cutoff = 80.0
            candidates = [
                w for n in range(len(term) - 2, len(term) + 3) for w in self._by_length.get((term[0], n), ())
            ]
            best = process.extractOne(term, candidates, scorer=fuzz.ratio, score_cutoff=cutoff)
            if best is not None:
                return (self._spellings[str(best[0])],)
        for size in range(len(term) - 1, max(PREFIX_AT_LEAST, int(len(term) * 0.6)) - 1, -1):
            known = self._prefixes.get(term[:size])
            if known is not None:
                return (known,)
        return (term,)  # unknown: it still counts against coverage

    def split_compound(self, term: str) -> tuple[str, ...]:
        """Split a Norwegian-style compound ("jobbmobil", "facebookvenn") into known terms."""
        best: tuple[str, ...] = ()
        if len(term) < 8 or term in self.targets:  # "facebook" is not "face" + "book"
            return best
        for i in range(4, len(term) - 3):
            left, right = term[:i], term[i:]
            for head in (left, left[:-1] if left[-1] in "se" and len(left) > 4 else None):
                if head is None:
                    continue
                head_term = self._term(head) or stem(head)
                right_term = self._term(right) or stem(right)
                if head_term in self.vocabulary and right_term in self.vocabulary:
                    candidate = (head_term, right_term)
                    if not best or min(map(len, candidate)) > min(map(len, best)):
                        best = candidate
        return best


def detect_language(text: str, hint: str | None, default: str, analyzer: Analyzer | None = None) -> str:
    """English or Norwegian, from function words and letters; the hint breaks ties, then the default."""
    lowered = text.lower()
    tokens = _TOKEN.findall(fold(lowered))
    score = {lang: float(sum(t in _FOLDED_MARKERS[lang] for t in tokens)) for lang in LANGS}
    score["nb"] += 2 * sum(lowered.count(c) for c in "æøå")
    if analyzer is not None:
        for lang in LANGS:
            score[lang] += 0.5 * sum(t in analyzer.language_words.get(lang, ()) for t in tokens)
    if score["nb"] > score["en"]:
        return "nb"
    if score["en"] > score["nb"]:
        return "en"
    hinted = normalise_lang(hint)
    return hinted if hinted is not None else default


def normalise_lang(hint: str | None) -> str | None:
    """Map a platform locale ("nb-NO", "no", "nn_NO", "en-GB") to a language the bot speaks."""
    if not hint:
        return None
    code = hint.lower().replace("_", "-").split("-")[0]
    if code in ("nb", "no", "nn"):
        return "nb"
    if code == "en":
        return "en"
    return None


class Index:
    """Everything a query needs, computed once per knowledge-base load."""

    def __init__(self, kb: KnowledgeBase) -> None:  # noqa: C901, PLR0912, PLR0915 — builds the index in one pass; being split in issue 10
        self.analyzer = Analyzer(kb.synonyms)
        self.entry_ids: list[str] = [*kb.entries, OUT_OF_SCOPE]
        questions: list[str] = []
        question_entry: list[int] = []
        question_terms: list[list[str]] = []
        # term -> how often it occurs in the entry's examples; answer/title/tags count a fraction
        entry_counts: list[dict[str, float]] = []
        entry_sizes: list[int] = []
        lang_words: dict[str, Counter[str]] = {lang: Counter() for lang in LANGS}
        sampled = dict.fromkeys(LANGS, 0)
        # The out-of-scope examples form one more pseudo-entry; when it wins, the bot does not answer.
        sources = [
            (e.questions, [*e.title.values()], list(e.tags), list(e.answer.values()))
            for e in kb.entries.values()
        ]
        if kb.out_of_scope:
            sources.append((kb.out_of_scope, [], [], []))
        self.out_of_scope = len(kb.entries) if kb.out_of_scope else -1
        for number, (entry_questions, titles, tags, answers) in enumerate(sources):
            counts: dict[str, float] = defaultdict(float)
            size = 0
            for lang, texts in entry_questions.items():
                for text in texts:
                    tokens = self.analyzer.tokens(text)
                    if sampled[lang] < LANGUAGE_SAMPLE:  # enough to tell the languages' words apart
                        lang_words[lang].update(tokens)
                        sampled[lang] += 1
                    q_terms = list(dict.fromkeys(self.analyzer.canonical(tokens)))
                    questions.append(text)
                    question_entry.append(number)
                    question_terms.append(q_terms)
                    for term in q_terms:
                        counts[term] += 1
                    size += 1
            per_language = max(size // len(entry_questions), 1) if entry_questions else 1
            analyse = self.analyzer.canonical

            def terms_of(texts: list[str], analyse: Callable[[list[str]], list[str]] = analyse) -> set[str]:
                return {t for text in texts for t in analyse(self.analyzer.tokens(text))}

            background: dict[str, float] = {}
            for term in terms_of(answers):
                background[term] = ANSWER_COUNT
            for term in terms_of(titles):
                background[term] = max(background.get(term, 0.0), TITLE_COUNT)
            for term in terms_of(tags):  # tags are HR's way to say "this word means this entry"
                background[term] = STRENGTH_AT * per_language
            for term, count in background.items():
                counts[term] = max(counts[term], count)
            entry_counts.append(counts)
            entry_sizes.append(per_language)
        vocabulary: set[str] = set()
        for counts in entry_counts:
            vocabulary.update(counts)
        self.analyzer.set_vocabulary(vocabulary)
        # Compounds in the examples also count as their parts, so "jobbmobil" meets "jobb mobil".
        splits = {t: parts for t in vocabulary if len(t) >= 8 and (parts := self.analyzer.split_compound(t))}
        for counts in entry_counts:
            for term in [t for t in counts if t in splits]:
                for part in splits[term]:
                    counts[part] = max(counts[part], counts[term])
            vocabulary.update(counts)
        self.analyzer.set_vocabulary(vocabulary)
        # A word marks a language when it is in that language's examples much more than the other's.
        self.analyzer.language_words = {
            lang: frozenset(
                w
                for w, n in lang_words[lang].items()
                if n >= 2 and lang_words[other].get(w, 0) * 4 < n and w not in _ALL_STOPWORDS
            )
            for lang, other in (("en", "nb"), ("nb", "en"))
        }

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
        sizes = np.asarray(entry_sizes, dtype=np.float64)

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

        # How characteristic a term is of an entry: saturates once several of its examples use it.
        strength = np.minimum(1.0, e_count / (STRENGTH_AT * sizes[e_entry])) ** STRENGTH_POWER
        self.entry_postings = {terms_by_id[t]: (ids, st) for t, ids, st in _group(e_term, e_entry, strength)}

        q_term = np.asarray([term_ids[t] for terms in question_terms for t in terms], dtype=np.int64)
        q_question = np.repeat(
            np.arange(len(question_terms), dtype=np.int64), [len(t) for t in question_terms]
        )
        self.question_postings = {terms_by_id[t]: ids for t, ids, _ in _group(q_term, q_question, None)}
        self.questions = questions
        self.question_entry = np.asarray(question_entry, dtype=np.int64)
        # each entry's examples are contiguous: entry i owns questions[entry_start[i]:entry_end[i]]
        per_entry = np.bincount(self.question_entry, minlength=len(entry_counts))
        self.entry_end = np.cumsum(per_entry)
        self.entry_start = self.entry_end - per_entry
        self.question_weight = np.bincount(q_question, weights=idf[q_term], minlength=len(questions))
        self.n_entries = len(entry_counts)

    def match(self, text: str, *, lang: str, exclude: int | None = None) -> Result:
        """Match `text`; `exclude` (an example question's position) leaves that example out, so
        `kb check` can ask whether the *other* examples would route it to its entry."""
        ranked, terms = self.rank(text, exclude=exclude)
        information = sum(self.idf.get(t, self.unknown_weight) for t in terms)
        return decide(lang, ranked, terms, specific=information >= MIN_INFORMATION)

    def rank(self, text: str, *, exclude: int | None = None) -> tuple[tuple[Match, ...], tuple[str, ...]]:
        """The best-scoring entries (the out-of-scope pseudo-entry among them) and the terms read."""
        terms = list(dict.fromkeys(self.analyzer.terms(text[:MAX_QUERY_CHARS])))
        if not terms or self.n_entries == 0:
            return (), tuple(terms)
        weights = {t: self.idf.get(t, self.unknown_weight) for t in terms}
        total = sum(weights.values())
        coverage: NDArray[np.float64] = np.zeros(self.n_entries)
        core: NDArray[np.float64] = np.zeros(self.n_entries)
        overlap: NDArray[np.float64] = np.zeros(len(self.questions))
        for term in terms:
            postings = self.entry_postings.get(term)
            if postings is not None:
                ids, strengths = postings
                coverage[ids] += weights[term] * strengths
                core[ids] += weights[term] * (strengths >= 1.0)
                overlap[self.question_postings.get(term, _EMPTY)] += weights[term]
        # Matching only an entry's incidental words ("christmas party" in a photo example) is not
        # matching the entry: scale by how much of the matched meaning is the entry's core terms.
        core_share = np.divide(core, coverage, out=np.zeros_like(core), where=coverage > 0)
        coverage /= total
        # Closeness is only worked out for the entries whose vocabulary covers the question best:
        # with a few dozen entries that is all of them, with thousands it keeps a query cheap.
        if self.n_entries > CANDIDATES:
            candidates = np.argpartition(-coverage, CANDIDATES)[:CANDIDATES]
            candidates = candidates[coverage[candidates] > 0]
        else:
            candidates = np.flatnonzero(coverage)
        best_question = np.full(self.n_entries, -1, dtype=np.int64)
        best_closeness: NDArray[np.float64] = np.zeros(self.n_entries)
        if candidates.size:
            starts, ends = self.entry_start[candidates], self.entry_end[candidates]
            lengths = ends - starts
            owners = np.repeat(candidates, lengths)
            examples = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(
                lengths.sum()
            )
            if exclude is not None:
                overlap[exclude] = 0.0
            # weighted Dice between the question and each example of the candidate entries
            closeness = 2 * overlap[examples] / (total + self.question_weight[examples])
            ascending = np.argsort(closeness, kind="stable")  # the best of each entry is written last
            best_closeness[owners[ascending]] = closeness[ascending]
            best_question[owners[ascending]] = examples[ascending]
        score = COVERAGE_WEIGHT * coverage + (1 - COVERAGE_WEIGHT) * best_closeness
        score *= 1 - CORE_PENALTY * (1 - core_share)
        if self.out_of_scope >= 0:  # the out-of-scope examples share no theme: only closeness counts
            score[self.out_of_scope] = OUT_OF_SCOPE_WEIGHT * best_closeness[self.out_of_scope]
        top = np.argpartition(-score, 5)[:5] if self.n_entries > 5 else np.arange(self.n_entries)
        top = top[np.argsort(-score[top])]
        ranked = tuple(
            Match(
                self.entry_ids[i],
                round(float(score[i]), 4),
                self.questions[best_question[i]] if best_question[i] >= 0 else "",
            )
            for i in top
            if score[i] > 0
        )
        return ranked, tuple(terms)


_EMPTY = np.zeros(0, dtype=np.int64)


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


OUT_OF_SCOPE = ""  # the id of the pseudo-entry made of the knowledge base's out-of-scope examples


def calibrated(score: float) -> float:
    """The probability that the best-ranked entry is the right one, given its score."""
    return float(np.interp(score, _CALIBRATION_SCORES, _CALIBRATION_PROBABILITIES))


def decide(lang: str, ranked: tuple[Match, ...], terms: tuple[str, ...], *, specific: bool = True) -> Result:
    """Answer, suggest or fall back, from the ranked candidates and the calibrated confidence.

    A question that is not `specific` (its words are ones nearly every entry uses) is never answered
    outright, however well it scores: "can I post about work?" fits half the guidelines.
    """
    if ranked and ranked[0].entry_id == OUT_OF_SCOPE:  # closest to something we know we don't cover
        return Result(lang, None, 0.0, (), tuple(m for m in ranked if m.entry_id != OUT_OF_SCOPE), terms)
    confidence = calibrated(ranked[0].score) if ranked else 0.0
    if not ranked or confidence < SUGGEST_AT:
        return Result(lang, None, confidence, (), ranked, terms)
    best = ranked[0]
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    floor = best.score - SUGGEST_WITHIN
    suggestions = tuple(
        m.entry_id for m in ranked if m.score >= floor and calibrated(m.score) >= SUGGEST_AT and m.entry_id
    )[:MAX_SUGGESTIONS]
    clear = confidence >= ANSWER_AT and best.score - runner_up >= MARGIN
    if clear and (specific or len(suggestions) < 2):  # a "choice" of one entry is no choice: answer it
        return Result(lang, best.entry_id, confidence, (), ranked, terms)
    return Result(lang, None, confidence, suggestions, ranked, terms, specific)
