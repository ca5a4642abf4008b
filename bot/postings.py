"""The word index of a knowledge base: which entries and example questions use each term, and how much.

Built once per knowledge-base load from the analysed example questions (`bot.analysis`), titles, tags
and answers. An entry's weight for a term says how characteristic the term is of it (saturating once
several of its examples use it); the inverse document frequency says how much meaning a term carries.
A query touches only the posting lists of its own terms.

Everything is kept in flat numpy arrays (compressed rows: `ptr[t]:ptr[t + 1]` is term t's list), built
from (text, term) pairs with numpy's sorting and counting: no Python object per example question, so
that 100 000 examples build in well under a second and take a few MiB.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from bot.analysis import Analyzer
from bot.knowledge import KnowledgeBase
from bot.languages import stems_of, tokens_of_many

LANGUAGE_SAMPLE = 20_000  # example questions per language read to learn each language's own words
TITLE_COUNT = 1.0  # a title or tag word counts like this many example questions
ANSWER_COUNT = 0.5  # a word of the answer text counts like this many example questions
STRENGTH_AT = 0.25  # a term in this share of an entry's examples is fully characteristic of it
STRENGTH_POWER = 0.5
UNKNOWN_WEIGHT = 1.0
ANSWER, TITLE, TAG = 0, 1, 2  # what a text beside the examples is
TEXTS_AT_ONCE = 10_000  # texts split into words together (bounds the memory a build takes on the way)

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
Pairs = tuple[I64, I64]  # (text, term id), in reading order
Table = tuple[I64, I64, F64, F64, F64]  # (entry, term id, weight, examples using it, what the rest add)


class Texts:
    """Many texts' words, one text after the other: text i's are `word[ptr[i]:ptr[i + 1]]`, each the
    number of its spelling in `vocabulary` (read a slice of texts at a time: no string per word kept)."""

    def __init__(self, texts: list[str]) -> None:
        self.vocabulary: list[str] = []
        self.number: dict[str, int] = {}  # spelling -> its place in `vocabulary`
        number = self.number
        words: list[NDArray[np.int32]] = []
        counts: list[int] = []
        for start in range(0, len(texts), TEXTS_AT_ONCE):
            found, many = tokens_of_many(texts[start : start + TEXTS_AT_ONCE])
            for word in dict.fromkeys(found):
                if word not in number:
                    number[word] = len(self.vocabulary)
                    self.vocabulary.append(word)
            words.append(np.fromiter(map(number.__getitem__, found), dtype=np.int32, count=len(found)))
            counts += many
        self.word = np.concatenate([np.zeros(0, dtype=np.int32), *words])
        self.ptr = np.r_[0, np.cumsum(counts, dtype=np.int64)]
        self.text = np.repeat(np.arange(len(texts), dtype=np.int32), counts)  # each word's text

    def of(self, text: int) -> list[str]:
        return [self.vocabulary[w] for w in self.word[self.ptr[text] : self.ptr[text + 1]].tolist()]


def strength(count: NDArray[np.float64], size: NDArray[np.float64]) -> NDArray[np.float64]:
    """How characteristic a term is of an entry: saturates once several of its examples use it."""
    return np.asarray(np.minimum(1.0, count / (STRENGTH_AT * size)) ** STRENGTH_POWER)


def rows(keys: NDArray[np.int64], count: int) -> NDArray[np.int64]:
    """Where each of `count` groups starts in `keys` sorted: `ptr[k]:ptr[k + 1]` holds key k."""
    return np.asarray(np.r_[0, np.cumsum(np.bincount(keys, minlength=count))], dtype=np.int64)


class Postings:
    """Per entry (the out-of-scope examples' pseudo-entry last) and per example question: its terms."""

    def __init__(self, kb: KnowledgeBase, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.languages = kb.languages
        sources = [(e.questions, e.title, e.tags, e.answer) for e in kb.entries.values()]
        # The out-of-scope examples form one more pseudo-entry; when it wins, the bot does not answer.
        if kb.out_of_scope:
            sources.append((kb.out_of_scope, {}, (), {}))
        self.out_of_scope = len(kb.entries) if kb.out_of_scope else -1
        self.n_entries = len(sources)
        self.questions: list[str] = []  # every example question, each entry's together
        self.question_lang: list[str] = []
        entry_of: list[int] = []
        per_language: list[int] = []
        side: list[tuple[str, str, int, int]] = []  # (text, language, entry, what) beside the examples
        for number, (entry_questions, titles, tags, answers) in enumerate(sources):
            size = 0
            for lang, written in entry_questions.items():
                self.questions += written
                self.question_lang += [lang] * len(written)
                size += len(written)
            entry_of += [number] * size
            per_language.append(max(size // len(entry_questions), 1) if entry_questions else 1)
            side += [(text, lang, number, ANSWER) for lang, text in answers.items()]
            side += [(text, lang, number, TITLE) for lang, text in titles.items()]
            side += [(tag, lang, number, TAG) for lang in self.languages for tag in tags]
        self.sizes = np.asarray(per_language, dtype=np.float64)
        self.question_entry = np.asarray(entry_of, dtype=np.int64)
        per_entry = np.bincount(self.question_entry, minlength=self.n_entries)
        # each entry's examples are contiguous: entry i owns questions[entry_start[i]:entry_end[i]]
        self.entry_end = np.cumsum(per_entry)
        self.entry_start = self.entry_end - per_entry
        texts = Texts(self.questions + [text for text, *_ in side])
        side_entry = np.asarray([entry for *_, entry, _ in side], dtype=np.int64)
        side_kind = np.asarray([kind for *_, kind in side], dtype=np.int64)
        self.documents = self._documents(texts, side_entry, side_kind)
        self.language_words = self._language_words(texts)
        self.term_ids: dict[str, int] = {}
        text_of, term_of = self._analysed(texts, self.question_lang + [lang for _, lang, _, _ in side])
        asked = text_of < len(self.questions)
        q_text, q_term = self._distinct((text_of[asked], term_of[asked]))
        s_text, s_term = text_of[~asked] - len(self.questions), term_of[~asked]
        self._build((self.question_entry[q_text], q_term), (side_entry[s_text], s_term, side_kind[s_text]))
        n_terms = len(self.term_ids)
        # The examples' terms, question by question, and for each term the examples using it.
        self.question_ptr = rows(q_text, len(self.questions))
        self.question_term_ids = q_term.astype(np.int32)
        by_term = np.argsort(q_term, kind="stable")
        self.example_ptr = rows(q_term, n_terms)
        self.example_ids = q_text[by_term].astype(np.int32)
        self.question_weight = np.bincount(q_text, weights=self.idf[q_term], minlength=len(self.questions))

    def question_terms(self, position: int) -> NDArray[np.int32]:
        """The term ids of example question `position`."""
        return self.question_term_ids[self.question_ptr[position] : self.question_ptr[position + 1]]

    # ----------------------------------------------------------------------------------- reading

    def _documents(self, texts: Texts, side_entry: I64, side_kind: I64) -> tuple[list[str], I64, I64, I64]:
        """Per entry, the words of its examples and titles, for the learned signal (`Space`): the
        distinct words in reading order, and (entry, word, how often) triples."""
        asked = texts.text < len(self.questions)
        kept = asked | np.r_[np.zeros(len(self.questions), dtype=bool), side_kind == TITLE][texts.text]
        entry = np.r_[self.question_entry, side_entry][texts.text[kept]]
        order = np.lexsort((~asked[kept], entry))  # entry by entry: its examples, then its titles
        word, row = texts.word[kept][order], entry[order]
        _, first = np.unique(word, return_index=True)
        in_order = word[np.sort(first)]
        local = np.zeros(len(texts.vocabulary), dtype=np.int64)
        local[in_order] = np.arange(len(in_order))
        size = max(len(in_order), 1)
        keys, counts = np.unique(row * size + local[word], return_counts=True)
        return [texts.vocabulary[i] for i in in_order.tolist()], keys // size, keys % size, counts

    def _language_words(self, texts: Texts) -> dict[str, frozenset[str]]:
        """A word marks a language when its examples use it much more than the other languages' do."""
        langs = np.asarray(self.question_lang, dtype=object)
        seen: dict[str, I64] = {}
        for lang in self.languages:
            picked = np.zeros(len(texts.ptr) - 1, dtype=bool)
            picked[np.flatnonzero(langs == lang)[:LANGUAGE_SAMPLE]] = True
            seen[lang] = np.bincount(texts.word[picked[texts.text]], minlength=len(texts.vocabulary))
        marks: dict[str, frozenset[str]] = {}
        for lang in self.languages:
            n = seen[lang]
            mine = n >= 2
            for other in self.languages:
                if other != lang:
                    mine &= seen[other] * 4 < n
            marks[lang] = (
                frozenset(texts.vocabulary[i] for i in np.flatnonzero(mine).tolist()) - self.analyzer.stop
            )
        return marks

    def _analysed(self, texts: Texts, langs: list[str]) -> Pairs:
        """(text, term id) for each term of each text as `Analyzer.canonical` reads it (repeats kept);
        a new term gets the next id in `term_ids`."""
        analyzer, term_ids, vocabulary = self.analyzer, self.term_ids, texts.vocabulary
        names = list(dict.fromkeys(langs))
        lang_number = {name: i for i, name in enumerate(names)}
        text_lang = np.fromiter(map(lang_number.__getitem__, langs), dtype=np.int64, count=len(langs))
        starts = np.fromiter(
            (w in analyzer.phrase_starts for w in vocabulary), dtype=bool, count=len(vocabulary)
        )
        phrased = np.bincount(texts.text[starts[texts.word]], minlength=len(langs)) > 0
        plain = ~phrased[texts.text]  # no synonym phrase can start in the text: word by word
        size = max(len(vocabulary), 1)
        combos, where = np.unique(text_lang[texts.text] * size + texts.word, return_inverse=True)
        stems = {lang: stems_of(vocabulary, lang) for lang in dict.fromkeys([*names, *analyzer.languages])}

        def stem_of(word: str, lang: str) -> str:
            return stems[lang][word]

        terms = [analyzer.word_term(vocabulary[c % size], names[c // size], stem_of) for c in combos.tolist()]
        term_of_combo = np.asarray(
            [term_ids.setdefault(t, len(term_ids)) if t else -1 for t in terms], dtype=np.int64
        )
        number = {combo: k for k, combo in enumerate(combos.tolist())} if phrased.any() else {}

        def term_of_word(word: str, lang: str) -> str:
            return terms[number[lang_number[lang] * size + texts.number[word]]]

        slow_text: list[int] = []
        slow_term: list[int] = []
        for i in np.flatnonzero(phrased).tolist():
            for term in analyzer.canonical(texts.of(i), langs[i], term_of_word):
                slow_text.append(i)
                slow_term.append(term_ids.setdefault(term, len(term_ids)))
        text_of = np.concatenate([texts.text[plain], np.asarray(slow_text, dtype=np.int64)])
        term_of = np.concatenate(
            [term_of_combo[where.reshape(-1)[plain]], np.asarray(slow_term, dtype=np.int64)]
        )
        order = np.argsort(text_of, kind="stable")  # each text's terms stay in reading order
        text_of, term_of = text_of[order], term_of[order]
        return text_of[term_of >= 0], term_of[term_of >= 0]

    def _distinct(self, pairs: Pairs) -> Pairs:
        """Each text's terms once, in the order they first occur."""
        text, term = pairs
        _, first = np.unique(text * max(len(self.term_ids), 1) + term, return_index=True)
        keep = np.sort(first)
        return text[keep], term[keep]

    # ---------------------------------------------------------------------------------- postings

    def _build(
        self,
        examples: Pairs,
        side: tuple[I64, I64, I64],
    ) -> None:
        """Per (entry, term): how many of the entry's examples use it, what its title, tags and answer
        add, and from both how characteristic the term is of the entry; grouped by term."""
        n_terms = max(len(self.term_ids), 1)
        entry, term = examples
        keys, count = np.unique(entry * n_terms + term, return_counts=True)
        # A tag's weight wins; else the most of title and answer.
        s_entry, s_term, kind = side
        value = np.where(
            kind == ANSWER,
            ANSWER_COUNT,
            np.where(kind == TITLE, TITLE_COUNT, STRENGTH_AT * self.sizes[s_entry]),
        )
        s_keys = s_entry * n_terms + s_term
        order = np.lexsort((value, kind == TAG, s_keys))
        s_keys, value = s_keys[order], value[order]
        last = np.r_[s_keys[1:] != s_keys[:-1], True] if len(s_keys) else np.zeros(0, dtype=bool)
        s_keys, value = s_keys[last], value[last]
        merged, where = np.unique(np.concatenate([keys, s_keys]), return_inverse=True)
        example, background = np.zeros(len(merged)), np.zeros(len(merged))
        example[where[: len(keys)]] = count
        background[where[len(keys) :]] = value
        p_entry, p_term, weight = merged // n_terms, merged % n_terms, np.maximum(example, background)
        self.analyzer.set_vocabulary(self.term_ids)
        p_entry, p_term, weight, example, background = self._compounds(
            examples, (p_entry, p_term, weight, example, background)
        )
        order = np.lexsort((p_entry, p_term))
        p_entry, p_term, weight = p_entry[order], p_term[order], weight[order]
        n_entries = max(self.n_entries, 1)
        document_frequency = np.bincount(p_term, weights=(weight >= 1).astype(np.float64), minlength=n_terms)
        self.idf = np.log1p(n_entries / np.maximum(document_frequency, 1.0))
        self.idf[document_frequency == 0] = 0.0  # a word only of answers explains, but weighs nothing alone
        # An unknown word weighs like a rare known one: meaning the knowledge base cannot explain.
        self.unknown_weight = UNKNOWN_WEIGHT * math.log(1 + n_entries)
        self.term_weight = np.where(document_frequency > 0, self.idf, self.unknown_weight)
        self.entry_ptr = rows(p_term, n_terms)
        self.entry_ids = p_entry.astype(np.int32)
        self.entry_strength = strength(weight, self.sizes[p_entry])
        self.entry_example = example[order].astype(np.float32)  # (whole numbers, and quarters)
        self.entry_background = background[order].astype(np.float32)

    def _compounds(self, examples: Pairs, table: Table) -> Table:
        """Compounds in an entry also count as their parts, so "jobbmobil" meets "jobb mobil"."""
        p_entry, p_term, weight, example, background = table
        n_terms, first = max(len(self.term_ids), 1), self.languages[0]
        splits = {
            self.term_ids[t]: [self.term_ids[p] for p in parts]
            for t in self.term_ids
            if len(t) >= 8 and (parts := self.analyzer.split_compound(t, first))
        }
        if not splits:
            return table
        n_parts = np.zeros(n_terms, dtype=np.int64)
        n_parts[list(splits)] = [len(parts) for parts in splits.values()]
        part_ids = np.zeros(n_terms + 1, dtype=np.int64)  # (compound c's parts: part_ids[ptr[c]:ptr[c + 1]])
        ptr = np.r_[0, np.cumsum(n_parts)]
        for compound, its_parts in splits.items():
            part_ids[ptr[compound] : ptr[compound] + len(its_parts)] = its_parts
        many = n_parts[p_term]
        offsets = np.arange(many.sum()) - np.repeat(np.cumsum(many) - many, many)
        new_entry = np.repeat(p_entry, many)
        new_term = part_ids[np.repeat(ptr[p_term], many) + offsets]
        # A part that is a compound itself, in the same entry: the order the terms are read in counts.
        keys = p_entry * n_terms + p_term
        chained = np.unique(
            new_entry[(n_parts[new_term] > 0) & np.isin(new_entry * n_terms + new_term, keys)]
        )
        merged, where = np.unique(np.concatenate([keys, new_entry * n_terms + new_term]), return_inverse=True)
        columns = []
        for column, extra in (
            (weight, np.repeat(weight, many)),
            (example, 0.0 * new_term),
            (background, 0.0 * new_term),
        ):
            out = np.zeros(len(merged))
            np.maximum.at(out, where, np.concatenate([column, extra]))
            columns.append(out)
        m_entry, m_term = merged // n_terms, merged % n_terms
        if not len(chained):
            return m_entry, m_term, columns[0], columns[1], columns[2]
        keep = ~np.isin(m_entry, chained)
        extra = np.asarray(self._chained(examples, table, splits, chained), dtype=np.float64).reshape(-1, 5)
        return (
            np.concatenate([m_entry[keep], extra[:, 0].astype(np.int64)]),
            np.concatenate([m_term[keep], extra[:, 1].astype(np.int64)]),
            np.concatenate([columns[0][keep], extra[:, 2]]),
            np.concatenate([columns[1][keep], extra[:, 3]]),
            np.concatenate([columns[2][keep], extra[:, 4]]),
        )

    def _chained(
        self, examples: Pairs, table: Table, splits: dict[int, list[int]], chained: I64
    ) -> list[tuple[float, ...]]:
        """`_compounds` for the entries where a part is a compound too: term by term, in the order the
        entry's examples use them (then its title, tags and answer), as read from `table`."""
        p_entry, p_term, weight, example, background = table
        e_entry, e_term = examples
        added: list[tuple[float, ...]] = []
        for number in chained.tolist():
            a, b = np.searchsorted(p_entry, [number, number + 1])
            known = {
                t: (w, x, g)
                for t, w, x, g in zip(
                    p_term[a:b].tolist(),
                    weight[a:b].tolist(),
                    example[a:b].tolist(),
                    background[a:b].tolist(),
                    strict=True,
                )
            }
            c, d = np.searchsorted(e_entry, [number, number + 1])
            counts = {t: known[t][0] for t in dict.fromkeys([*e_term[c:d].tolist(), *known])}
            for term in [t for t in counts if t in splits]:
                for part in splits[term]:
                    counts[part] = max(counts.get(part, 0.0), counts[term])
            added += [(number, t, w, *known.get(t, (0.0, 0.0, 0.0))[1:]) for t, w in counts.items()]
        return added
