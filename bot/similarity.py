"""The signal learned from the knowledge base's own examples: closeness in a TF-IDF space of character
n-grams (2–5 letters, within words) and whole words.

Each entry is one point of that space, the centroid of its example questions (and title): the words and
word pieces its examples share weigh most, those every entry uses (inverse document frequency) least.
A question is compared with each entry's point by cosine similarity. Word pieces make it robust to
inflections, compounds and typos in any language without a hand-made vocabulary; whole words keep
exact matches ahead. Written with numpy alone (no scikit-learn, no scipy at run time): a query only
gathers the rows of the entries it is compared with.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain, pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

WORDS_KEPT = 50_000  # questions' words whose features are kept at hand
ROWS_AT_ONCE = 1000  # rows built together (bounds the memory a build takes on the way)
SHORTEST, LONGEST = 3, 4  # n-gram lengths (bench/cross_validate.py: as good as 2-5, half the work)
WORD_WEIGHT = 1.0  # a whole word against its pieces (bench/cross_validate.py: 2 or 3 rank no better)
WORD = "\x00"  # marks a whole-word feature, so the word "car" and the piece "car" are two features


@lru_cache(maxsize=200_000)
def pieces(word: str) -> tuple[str, ...]:
    """The features one folded word contributes: its n-grams (padded with spaces) and itself."""
    padded = f" {word} "
    out = [padded[i : i + n] for n in range(SHORTEST, LONGEST + 1) for i in range(len(padded) - n + 1)]
    out.append(WORD + word)
    return tuple(out)


class Space:
    """Entry centroids in the n-gram space; rows are entries (the out-of-scope examples' row last).

    Kept compact: per row its features (int32) and how often each occurs (the smallest integer type);
    a weight is worked out when a question is compared with the row (sublinear TF-IDF over the row's
    length, `_weights`)."""

    def __init__(
        self,
        documents: tuple[Sequence[str], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]],
        rows: int,
        *,
        by_feature: bool = True,
    ) -> None:
        """`documents`: the distinct folded words of all rows, and (row, word, how often) triples sorted
        by row; `by_feature`: also keep the weights by feature, for `all_cosines` (a few hundred rows)."""
        distinct, pair_row, pair_word, pair_count = documents
        self.features: dict[str, int] = {}
        self._last: tuple[tuple[str, ...], Counter[int]] | None = None  # see _counts
        uncached = pieces.__wrapped__  # every word once: the cache is for questions
        word_features = [
            [self.features.setdefault(p, len(self.features)) for p in uncached(w)] for w in distinct
        ]
        self.rows = rows
        lengths = np.asarray([len(f) for f in word_features], dtype=np.int64)
        flat = np.fromiter(chain.from_iterable(word_features), dtype=np.int64, count=int(lengths.sum()))
        del word_features
        starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
        indices, counts, row_of = [], [], []
        ends = np.asarray(np.r_[np.arange(0, rows, ROWS_AT_ONCE), rows], dtype=np.int64)
        bounds: list[int] = np.searchsorted(pair_row, ends).tolist()
        for a, b in pairwise(bounds):
            words = pair_word[a:b]
            found = _features(pair_row[a:b], flat, starts[words], lengths[words], pair_count[a:b])
            row_of.append(found[0])
            indices.append(found[1])
            counts.append(found[2])
        # The smallest integer type that holds every feature (uint16 below 65 536 features: half the
        # memory of int32, 6 MiB at 10 000 entries), as `counts` below.
        self.indices: NDArray[Any] = np.concatenate([np.zeros(0, dtype=np.int32), *indices]).astype(
            np.min_scalar_type(max(len(self.features) - 1, 0)), copy=False
        )
        summed = np.concatenate([np.zeros(0, dtype=np.int64), *counts])
        rows_of = np.concatenate([np.zeros(0, dtype=np.int64), *row_of])
        del indices, counts, row_of
        most = int(summed.max()) if len(summed) else 0
        self.counts = summed.astype(np.min_scalar_type(most))
        self._tf = np.where(
            np.arange(most + 1) > 0, 1.0 + np.log(np.maximum(np.arange(most + 1), 1e-12)), 0.0
        )
        self._scratch = threading.local()
        self._word_features: dict[str, tuple[int, ...]] = {}  # a question's word -> its known features
        document_frequency = np.bincount(self.indices, minlength=max(len(self.features), 1))
        self.idf = np.log((1 + self.rows) / (1 + document_frequency)) + 1.0
        whole = np.fromiter((f.startswith(WORD) for f in self.features), dtype=bool, count=len(self.features))
        self.idf[: len(whole)][whole] *= WORD_WEIGHT
        self.indptr = np.r_[0, np.cumsum(np.bincount(rows_of, minlength=self.rows))]
        weights = self._weights(summed, self.indices)
        squares = np.bincount(rows_of, weights=weights * weights, minlength=self.rows)
        self.norms = np.maximum(np.sqrt(squares), 1e-12)
        # The weights by feature, so a question can add up only the features it has (few rows).
        self.feature_rows = np.zeros(0, dtype=np.int32)
        self.feature_data = np.zeros(0)
        self.feature_ptr = np.zeros(1, dtype=np.int64)
        if by_feature:
            by = np.argsort(self.indices, kind="stable")
            self.feature_rows = rows_of[by].astype(np.int32)
            self.feature_data = (weights / self.norms[rows_of])[by]
            self.feature_ptr = np.r_[0, np.cumsum(document_frequency)]

    def __getstate__(self) -> dict[str, object]:
        """Pickled without what a process keeps at hand (bot/index_cache.py keeps a built index on disk)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_scratch", "_word_features", "_last")}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._scratch = threading.local()
        self._word_features = {}
        self._last = None

    def _weights(self, counts: NDArray[Any], indices: NDArray[Any]) -> NDArray[np.float64]:
        """Sublinear TF-IDF of features occurring `counts` times (before the row's length is divided out)."""
        tf = np.where(counts > 0, 1.0 + np.log(np.maximum(counts, 1e-12)), 0.0)
        return np.asarray(tf * self.idf[indices])

    def _counts(self, words: Sequence[str]) -> Counter[int]:
        """How often each known feature occurs in `words` (features the examples never use drop out);
        the leave-one-out fit asks for the same example's twice in a row."""
        key = tuple(words)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        counts: Counter[int] = Counter()
        known = self._word_features
        if len(known) > WORDS_KEPT:
            known.clear()
        for word in words:
            found = known.get(word)
            if found is None:
                found = known[word] = tuple(
                    f for p in pieces(word) if (f := self.features.get(p)) is not None
                )
            counts.update(found)
        self._last = (key, counts)
        return counts

    def vector(self, words: Sequence[str]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """A question as sorted feature ids and their weights."""
        counts = self._counts(words)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        ids = np.fromiter(sorted(counts), dtype=np.int64, count=len(counts))
        weights = (1.0 + np.log(np.asarray([counts[i] for i in ids], dtype=np.float64))) * self.idf[ids]
        return ids, weights / max(float(np.linalg.norm(weights)), 1e-12)

    def all_cosines(self, query: tuple[NDArray[np.int64], NDArray[np.float64]]) -> NDArray[np.float64]:
        """Cosine similarity of the question with every row (for a few hundred rows: cheapest)."""
        ids, weights = query
        if not len(ids):
            return np.zeros(self.rows)
        starts, ends = self.feature_ptr[ids], self.feature_ptr[ids + 1]
        lengths = ends - starts
        positions = _spans(starts, lengths)
        products = self.feature_data[positions] * np.repeat(weights, lengths)
        return np.asarray(
            np.bincount(self.feature_rows[positions], weights=products, minlength=self.rows), dtype=np.float64
        )

    def cosines(
        self, query: tuple[NDArray[np.int64], NDArray[np.float64]], rows: NDArray[np.int64]
    ) -> NDArray[np.float64]:
        """Cosine similarity of the question with each of `rows` (for a few rows of many)."""
        ids, weights = query
        if not len(ids) or not len(rows):
            return np.zeros(len(rows))
        dense = self._dense()  # the question, looked up by feature
        dense[ids] = weights
        try:
            starts, ends = self.indptr[rows], self.indptr[rows + 1]
            lengths = ends - starts
            positions = _spans(starts, lengths)
            asked = dense[self.indices[positions]]
            hit = np.flatnonzero(asked)  # the row's features the question has (the rest add nothing)
            at, owner = positions[hit], np.repeat(np.arange(len(rows)), lengths)[hit]
            data = self._tf[self.counts[at]] * self.idf[self.indices[at]] / self.norms[rows[owner]]
            products = asked[hit] * data
        finally:
            dense[ids] = 0.0
        return np.asarray(np.bincount(owner, weights=products, minlength=len(rows)), dtype=np.float64)

    def _dense(self) -> NDArray[np.float64]:
        """A zeroed array over all features, this thread's own (allocated once: a question fills and
        empties only its own features)."""
        dense: NDArray[np.float64] | None = getattr(self._scratch, "dense", None)
        if dense is None:
            dense = self._scratch.dense = np.zeros(len(self.idf))
        return dense

    def cosine_without(
        self,
        query: tuple[NDArray[np.int64], NDArray[np.float64]],
        row: int,
        words: Sequence[str],
    ) -> float:
        """Cosine with `row` as if the example made of `words` had not been written in it (for the
        leave-one-out fit: an example must not be compared with a centroid that contains itself)."""
        ids, weights = query
        a, b = int(self.indptr[row]), int(self.indptr[row + 1])
        features, counts = self.indices[a:b], self.counts[a:b].astype(np.float64)
        removed = self._counts(words)
        if removed:
            drop_ids = np.fromiter(removed, dtype=np.int64, count=len(removed))
            drop = np.asarray([removed[i] for i in drop_ids], dtype=np.float64)
            where = np.searchsorted(features, drop_ids)
            where = np.minimum(where, len(features) - 1)
            ok = features[where] == drop_ids
            counts[where[ok]] -= drop[ok]
        weights_row = np.where(counts > 0, 1.0 + np.log(np.maximum(counts, 1e-12)), 0.0) * self.idf[features]
        norm = float(np.linalg.norm(weights_row))
        if norm == 0 or not len(ids):
            return 0.0
        found = np.minimum(np.searchsorted(ids, features), len(ids) - 1)
        hit = ids[found] == features
        return float(np.sum(np.where(hit, weights[found] * weights_row, 0.0)) / norm)


def _spans(starts: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """The positions `starts[0]` .. `starts[0] + lengths[0] - 1`, then those of the next, ... as one array:
    a question gathers the rows of all its features in one numpy operation (an exclusive cumsum, not
    np.r_: fewer numpy calls, and this runs for every question)."""
    through = np.cumsum(lengths)
    return np.asarray(
        np.repeat(starts - (through - lengths), lengths) + np.arange(through[-1]), dtype=np.int64
    )


def _features(
    row: NDArray[np.int64],
    flat: NDArray[np.int64],
    start: NDArray[np.int64],
    length: NDArray[np.int64],
    count: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
    """(row, feature, how often) for (row, word, how often) triples, where each word's features are
    `flat[start:start + length]`: one triple per row and feature, sorted."""
    if not len(row):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    offsets = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    n_features = int(flat.max()) + 1
    key = np.repeat(row, length) * n_features + flat[np.repeat(start, length) + offsets]
    amounts = np.repeat(count, length)
    order = np.argsort(key)  # (whole counts: any order sums them exactly)
    key, amounts = key[order], amounts[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    unique = key[first]
    return unique // n_features, (unique % n_features).astype(np.int32), np.add.reduceat(amounts, first)
