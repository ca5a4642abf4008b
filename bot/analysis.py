"""From chat text to canonical terms: folded, tokenised, synonym-mapped, stemmed, compounds split, typos
corrected against the knowledge base's own vocabulary.

How people type in chat is messy: typos, nicknames ("fb", "insta"), synonyms HR listed ("boss"/"sjef"),
Norwegian with or without æøå and written as compounds ("jobbmobil"). Stems and stop words are those of
the language the text is in (`bot.languages`), so a Swedish or German knowledge base is analysed as
Swedish or German.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

from rapidfuzz import fuzz, process

from bot.languages import stem, tokens

PREFIX_AT_LEAST = 5  # letters an unknown word must share with a known one to take its meaning


class Analyzer:
    """Turns text into canonical terms for one knowledge base (its synonyms, languages, stop words)."""

    def __init__(
        self,
        synonyms: Mapping[str, Iterable[str]],
        languages: tuple[str, ...] = ("en", "nb"),
        stop: frozenset[str] | None = None,
    ) -> None:
        from bot.languages import stop_words_of

        self.languages = languages
        self.stop = stop if stop is not None else stop_words_of(languages)
        self.words: dict[str, str] = {}  # a spelling HR listed -> its canonical term
        self.stems: dict[str, str] = {}  # the stem of a listed spelling -> its canonical term
        self.phrases: dict[tuple[str, ...], str] = {}
        # The canonical term is the group's key itself, unstemmed, so two keys never collapse into one
        # ("employer" and "employee" would share a stem).
        self.targets = frozenset("".join(tokens(str(key))) for key in synonyms)
        for canonical, variants in synonyms.items():
            target = "".join(tokens(str(canonical)))
            for variant in (canonical, *variants):
                words = tuple(tokens(str(variant)))
                if len(words) == 1:
                    self.words[words[0]] = target
                    for lang in languages:
                        stemmed = stem(words[0], lang)
                        if len(stemmed) >= 5:  # a short stem ("last", "meld") is too often another word
                            self.stems.setdefault(stemmed, target)
                elif words:
                    self.phrases[words] = target
        self.longest_phrase = max((len(p) for p in self.phrases), default=1)
        self.phrase_starts = frozenset(p[0] for p in self.phrases)
        self.vocabulary: frozenset[str] = frozenset()
        self._by_length: dict[tuple[str, int], list[str]] = {}  # (first letter, length) -> spellings
        self._near: dict[tuple[str, int], list[str]] = {}
        self._variants: dict[str, str] = {}  # a synonym's spelling outside the vocabulary -> its term
        self._prefixes: dict[str, str] = {}
        self._correct = lru_cache(maxsize=50_000)(self._correct_uncached)
        self._term = lru_cache(maxsize=200_000)(self._term_uncached)
        self._terms: dict[str, dict[str, str]] = {}  # lang -> word -> term: the hot path's cache

    def __getstate__(self) -> dict[str, object]:
        """Pickled without its memo caches (bot/index_cache.py keeps a built index on disk)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_correct", "_term", "_terms", "_near")}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._correct = lru_cache(maxsize=50_000)(self._correct_uncached)
        self._term = lru_cache(maxsize=200_000)(self._term_uncached)
        self._terms = {}
        self._near = {}

    def set_vocabulary(self, vocabulary: Iterable[str]) -> None:
        self.vocabulary = frozenset(vocabulary)
        # Typos are corrected towards known terms and towards every spelling of a synonym (a term is its
        # own spelling: only the others are kept, not a second table of the vocabulary, 3 MiB at 10 000
        # entries).
        self._variants = {
            variant: canonical
            for variant, canonical in self.words.items()
            if canonical in self.vocabulary and len(variant) >= 4 and variant not in self.vocabulary
        }
        spellings = [*((term, term) for term in self.vocabulary), *self._variants.items()]
        # Unambiguous prefixes of known spellings, for inflections the stemmer does not know
        # ("nedbemanningen" meets "nedbemanne").
        prefixes: dict[str, str | None] = {}
        for word, canonical in spellings:
            for size in range(PREFIX_AT_LEAST, len(word) + 1):
                known = prefixes.setdefault(word[:size], canonical)
                if known is not None and known != canonical:
                    prefixes[word[:size]] = None  # shared by two meanings: tells nothing
        self._prefixes = {prefix: term for prefix, term in prefixes.items() if term is not None}
        by_length: dict[tuple[str, int], list[str]] = defaultdict(list)
        for word, _ in sorted(spellings):  # (sorted: of two as close, the same wins in every process)
            by_length[word[0], len(word)].append(word)
        self._by_length = dict(by_length)
        self._near = {}  # (first letter, length) -> the spellings of about that length
        self._correct.cache_clear()
        self._term.cache_clear()
        self._terms = {}

    def tokens(self, text: str) -> list[str]:
        return tokens(text)

    def canonical(  # noqa: C901 — phrases first, then one word at a time; the cases read best in one loop
        self, words: list[str], lang: str | None = None, term_of: Callable[[str, str], str] | None = None
    ) -> list[str]:
        """Synonyms (phrases first), stop words out, stems in; `term_of`: the term of one word outside
        phrases, when the caller knows them (an index build)."""
        lang = lang or self.languages[0]
        if self.phrase_starts.isdisjoint(words):  # the common case: no synonym phrase can start here
            cache = self._terms.get(lang)
            if cache is None:
                cache = self._terms[lang] = {}
            found = []
            for word in words:
                term = cache.get(word)
                if term is None:
                    term = cache[word] = self._term_uncached(word, lang)
                if term:
                    found.append(term)
            return found
        out: list[str] = []
        i = 0
        while i < len(words):
            if words[i] in self.phrase_starts:
                for size in range(min(self.longest_phrase, len(words) - i), 1, -1):
                    target = self.phrases.get(tuple(words[i : i + size]))
                    if target is not None:
                        out.append(target)
                        i += size
                        break
                else:
                    target = None
                if target is not None:
                    continue
            term = (term_of or self._term)(words[i], lang)
            i += 1
            if term:
                out.append(term)
        return out

    def word_term(self, word: str, lang: str, stem_of: Callable[[str, str], str]) -> str:
        """One word's term outside synonym phrases ("" for a stop word), as `canonical` reads it, with
        the stems of `stem_of` (an index build stems all its words at once) and nothing kept."""
        return self._term_uncached(word, lang, stem_of)

    def _term_uncached(self, word: str, lang: str, stem_of: Callable[[str, str], str] = stem) -> str:
        """One word's canonical term, or "" for a stop word.

        A spelling HR listed wins; a stop word is dropped before stems are compared, so a synonym
        whose stem happens to be a filler word ("stillinger" -> "still") cannot give it a meaning."""
        mapped = self.words.get(word)
        if mapped is not None:
            return mapped
        if word in self.stop or (len(word) == 1 and not word.isdigit()):
            return ""
        # The text's language first; another language of the knowledge base only where its stem is a
        # word the knowledge base knows (a Norwegian word in an English sentence, a misread language).
        first = stem_of(word, lang)
        for other in (lang, *(x for x in self.languages if x != lang)):
            stemmed = first if other == lang else stem_of(word, other)
            known = self.words.get(stemmed) or self.stems.get(stemmed)
            if known:
                return known
            if stemmed in self.vocabulary and (other == lang or first not in self.vocabulary):
                return stemmed
        return first

    def terms(self, text: str, lang: str | None = None) -> list[str]:
        """The terms of a query: canonical terms, with unknown ones split or typo-corrected."""
        lang = lang or self.languages[0]
        out: list[str] = []
        for term in self.canonical(self.tokens(text), lang):
            if term in self.vocabulary:
                out.append(term)
            else:
                out.extend(self._correct(term, lang))
        return out

    def _correct_uncached(self, term: str, lang: str) -> tuple[str, ...]:
        parts = self.split_compound(term, lang)
        if parts:
            return parts
        if len(term) >= 5 and not term.isdigit():
            # A typo keeps the first letter and length roughly; anything looser "corrects" real words.
            candidates = self._near.get((term[0], len(term)))
            if candidates is None:
                candidates = [
                    w
                    for n in range(len(term) - 2, len(term) + 3)
                    for w in self._by_length.get((term[0], n), ())
                ]
                if candidates:  # (kept only for letters and lengths the knowledge base has: bounded)
                    self._near[term[0], len(term)] = candidates
            best = process.extractOne(term, candidates, scorer=fuzz.ratio, score_cutoff=80.0)
            if best is not None:
                word = str(best[0])
                return (self._variants.get(word, word),)
        for size in range(len(term) - 1, max(PREFIX_AT_LEAST, int(len(term) * 0.6)) - 1, -1):
            known = self._prefixes.get(term[:size])
            if known is not None:
                return (known,)
        return (term,)  # unknown: it still counts against coverage

    def split_compound(self, term: str, lang: str | None = None) -> tuple[str, ...]:
        """Split a compound ("jobbmobil", "facebookvenn", "Arbeitshandy") into known terms."""
        lang = lang or self.languages[0]
        best: tuple[str, ...] = ()
        if len(term) < 8 or term in self.targets:  # "facebook" is not "face" + "book"
            return best
        for i in range(4, len(term) - 3):
            left, right = term[:i], term[i:]
            for head in (left, left[:-1] if left[-1] in "se" and len(left) > 4 else None):
                if head is None:
                    continue
                head_term = self._term(head, lang) or stem(head, lang)
                right_term = self._term(right, lang) or stem(right, lang)
                if head_term in self.vocabulary and right_term in self.vocabulary:
                    candidate = (head_term, right_term)
                    if not best or min(map(len, candidate)) > min(map(len, best)):
                        best = candidate
        return best


def fold_all(texts: Iterable[str]) -> set[str]:
    return {word for text in texts for word in tokens(text)}
