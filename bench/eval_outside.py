"""Matching quality on a knowledge base nobody here wrote: BANKING77 turned into HR-style entries.

    python bench/eval_outside.py [--examples 5,10,20] [--seed 77] [--oos-examples 5] [--errors N]

How the knowledge base is built (fixed seed, so every run and every reader gets the same one):
the 77 intents of `../shared/datasets/banking77` are shuffled; the first 60 become entries with
`--examples` example questions each, drawn from the training questions; the other 17 are held out
as questions the bot must *not* answer, and `--oos-examples` (5) of their training questions are
written into `out-of-scope.yaml`. The folder is written as YAML (English only, no settings, no
synonyms) and loaded by the same loader as the bot's. Every test question of the 77 intents is asked.

Printed per size, with the baseline measured in the same run on the same examples (a TF-IDF
(character 2–5-grams within words + words) + logistic-regression classifier, scikit-learn defaults):

* answered right: answered, with the right entry (share of in-scope questions);
* did you mean: not answered, the right entry among the suggestions;
* confidently wrong: answered with another entry (share of in-scope questions);
* out of scope declined: out-of-scope questions not answered;
* ranking: the right entry first, answered or offered first ("did you mean");
* top-1: the ranker's first entry regardless of the decision (comparable to the baseline's).

Targets (issue 10): confidently wrong ≤ 5 %, out of scope declined ≥ 85 %, ranking ≥ 75 %, answered
right ≥ 60 %. scikit-learn is a development dependency only (`pip install -e '.[dev]'`).

`--ceiling` also prints how far each one's *ordering* of confidence could go: the most answered right
that any single threshold on it reaches with confidently wrong ≤ 5 % and out of scope declined ≥ 85 %,
the threshold chosen on the test questions themselves (an upper bound that no threshold set beforehand
can beat; never a setting to copy).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import re
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.conversation import Conversation
from bot.knowledge_loader import load_knowledge
from bot.matching import OUT_OF_SCOPE

ROOT = Path(__file__).resolve().parent.parent
# `shared/` sits beside the repository (in a worktree under wt/, one level further up)
DATASET = next(
    (p / "shared/datasets/banking77" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared").is_dir()),
    ROOT.parent / "shared/datasets/banking77",
)
IN_SCOPE = 60
HELD_OUT = 17


def entry_id(intent: str) -> str:
    """An intent's name as a knowledge-base id ("Refund_not_showing_up" -> "refund-not-showing-up")."""
    return re.sub(r"[^a-z0-9]+", "-", intent.lower()).strip("-")


@dataclass(frozen=True)
class Split:
    entries: dict[str, list[str]]  # entry id -> example questions
    out_of_scope: list[str]
    intents: dict[str, str]  # entry id -> the intent it was made of
    tests: list[tuple[str, str | None]]  # (question, expected entry id or None)


def read(path: Path) -> dict[str, list[str]]:
    by_intent: dict[str, list[str]] = defaultdict(list)
    with path.open(encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            by_intent[row["category"]].append(row["text"].strip())
    return dict(by_intent)


@dataclass(frozen=True)
class Sample:
    """Intents kept as entries (with their example questions) and intents held out (a few of their
    questions written as the knowledge base's out-of-scope examples)."""

    kept: list[str]
    held: list[str]
    entries: dict[str, list[str]]
    out_of_scope: list[str]


def sample(
    train: dict[str, list[str]],
    rng: random.Random,
    examples: int,
    oos_examples: int,
    *,
    in_scope: int = IN_SCOPE,
    held_out: int = HELD_OUT,
) -> Sample:
    intents = sorted(train)
    rng.shuffle(intents)
    kept, held = intents[:in_scope], intents[in_scope : in_scope + held_out]
    entries = {entry_id(intent): rng.sample(train[intent], examples) for intent in kept}
    pool = [q for intent in held for q in train[intent]]
    return Sample(kept, held, entries, rng.sample(pool, oos_examples))


def split(dataset: Path, examples: int, seed: int, oos_examples: int) -> Split:
    train, test = read(dataset / "train.csv"), read(dataset / "test.csv")
    drawn = sample(train, random.Random(seed), examples, oos_examples)
    kept, held, entries, out_of_scope = drawn.kept, drawn.held, drawn.entries, drawn.out_of_scope
    tests: list[tuple[str, str | None]] = [(q, entry_id(i)) for i in kept for q in test[i]]
    tests += [(q, None) for i in held for q in test[i]]
    return Split(entries, out_of_scope, {entry_id(i): i for i in kept}, tests)


def write_folder(data: Split, folder: Path) -> None:
    """The knowledge base as HR would write it: English only, a title and an answer per entry."""
    entries = [
        {
            "id": entry_id,
            "title": {"en": entry_id.replace("-", " ").capitalize()},
            "questions": {"en": questions},
            "answer": {"en": f"This is what you need to know about {entry_id.replace('-', ' ')}."},
        }
        for entry_id, questions in data.entries.items()
    ]
    dump = {"width": 1000, "allow_unicode": True, "sort_keys": False}
    (folder / "entries.yaml").write_text(yaml.safe_dump({"entries": entries}, **dump), encoding="utf-8")
    oos = {"out_of_scope": {"en": data.out_of_scope}}
    (folder / "out-of-scope.yaml").write_text(yaml.safe_dump(oos, **dump), encoding="utf-8")


@dataclass
class Tally:
    in_scope: int = 0
    right: int = 0
    suggested: int = 0
    wrong: int = 0
    ranked_first: int = 0
    top1: int = 0
    out_scope: int = 0
    declined: int = 0

    def line(self, name: str) -> str:
        n, m = max(self.in_scope, 1), max(self.out_scope, 1)
        return (
            f"  {name:<22} answered right {self.right / n:6.1%} "
            f"| did-you-mean has it {self.suggested / n:6.1%} "
            f"| confidently wrong {self.wrong / n:6.1%} | out of scope declined {self.declined / m:6.1%} "
            f"| ranking {self.ranked_first / n:6.1%} | top-1 {self.top1 / n:6.1%}"
        )


@dataclass(frozen=True)
class Scored:
    """One test question as a confidence-ordered classifier saw it, for `ceiling`."""

    confidence: float
    right: bool  # its first entry is the expected one (False for an out-of-scope question)
    out_of_scope: bool


def ceiling(scored: list[Scored], wrong_at_most: float = 0.05, declined_at_least: float = 0.85) -> str:
    """The most answered right any one threshold on the confidence reaches within both bars."""
    inside = sum(not s.out_of_scope for s in scored) or 1
    outside = sum(s.out_of_scope for s in scored) or 1
    best: tuple[float, float, float] | None = None
    right = wrong = answered_outside = 0
    ordered = sorted(scored, key=lambda s: -s.confidence)
    for at, s in enumerate(ordered):  # answering everything at least as confident as `s`
        right += not s.out_of_scope and s.right
        wrong += not s.out_of_scope and not s.right
        answered_outside += s.out_of_scope
        if at + 1 < len(ordered) and ordered[at + 1].confidence == s.confidence:
            continue  # a threshold cannot split equal confidences
        figures = (right / inside, wrong / inside, 1 - answered_outside / outside)
        if (
            figures[1] <= wrong_at_most
            and figures[2] >= declined_at_least
            and (best is None or figures > best)
        ):
            best = figures
    if best is None:
        return "no threshold meets both bars"
    right_share, wrong_share, declined = best
    return (
        f"answered right {right_share:6.1%} | confidently wrong {wrong_share:6.1%} "
        f"| out of scope declined {declined:6.1%}"
    )


def policybot(
    conversation: Conversation, tests: list[tuple[str, str | None]], errors: int, scored: list[Scored]
) -> Tally:
    tally = Tally()
    shown = 0
    for question, expect in tests:
        result = conversation.match(question)
        top = next((m.entry_id for m in result.ranked if m.entry_id != OUT_OF_SCOPE), None)
        declined_outright = bool(result.ranked) and result.ranked[0].entry_id == OUT_OF_SCOPE
        confidence = 0.0 if declined_outright else result.confidence
        scored.append(Scored(confidence, expect is not None and top == expect, expect is None))
        if expect is None:
            tally.out_scope += 1
            tally.declined += result.answer_id is None
            continue
        tally.in_scope += 1
        tally.right += result.answer_id == expect
        tally.wrong += result.answer_id is not None and result.answer_id != expect
        tally.suggested += result.answer_id is None and expect in result.suggestions
        first = result.answer_id or (result.suggestions[0] if result.suggestions else None)
        tally.ranked_first += first == expect
        tally.top1 += top == expect
        if result.answer_id not in (None, expect) and shown < errors:
            shown += 1
            print(
                f"    wrong: {question!r} -> {result.answer_id} ({result.confidence:.2f}), expected {expect}"
            )
    return tally


def baseline(data: Split, scored: list[Scored]) -> tuple[Tally, Tally]:
    """TF-IDF (char 2-5 within word boundaries + words) + logistic regression: top-1 always answered,
    and answered only at probability ≥ 0.5 (suggesting the top 3 otherwise)."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [q for qs in data.entries.values() for q in qs]
    labels = [e for e, qs in data.entries.items() for _ in qs]
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    words = TfidfVectorizer(analyzer="word", sublinear_tf=True)
    features = hstack([chars.fit_transform(texts), words.fit_transform(texts)]).tocsr()
    model = LogisticRegression(max_iter=2000).fit(features, labels)
    asked = [q for q, _ in data.tests]
    probabilities = model.predict_proba(hstack([chars.transform(asked), words.transform(asked)]).tocsr())
    always, thresholded = Tally(), Tally()
    for (_, expect), row in zip(data.tests, probabilities, strict=True):
        order = row.argsort()[::-1]
        best, confident = str(model.classes_[order[0]]), row[order[0]] >= 0.5
        scored.append(Scored(float(row[order[0]]), best == expect, expect is None))
        top3 = [str(model.classes_[i]) for i in order[:3]]
        for tally, answered in ((always, True), (thresholded, confident)):
            if expect is None:
                tally.out_scope += 1
                tally.declined += not answered
                continue
            tally.in_scope += 1
            tally.right += answered and best == expect
            tally.wrong += answered and best != expect
            tally.suggested += not answered and expect in top3
            tally.ranked_first += best == expect
            tally.top1 += best == expect
    return always, thresholded


async def run(examples: int, args: argparse.Namespace) -> None:
    data = split(args.dataset, examples, args.seed, args.oos_examples)
    with tempfile.TemporaryDirectory() as folder:
        write_folder(data, Path(folder))
        started = time.perf_counter()
        kb = await load_knowledge(Path(folder))
        conversation = Conversation(kb)
        build = time.perf_counter() - started
    in_scope = sum(e is not None for _, e in data.tests)
    print(
        f"{examples} examples per entry: {len(data.entries)} entries, {len(data.out_of_scope)} out-of-scope "
        f"examples; {in_scope} in-scope and {len(data.tests) - in_scope} out-of-scope test questions "
        f"(load + build {build:.2f} s)"
    )
    ours: list[Scored] = []
    print(policybot(conversation, data.tests, args.errors, ours).line("policybot"))
    theirs: list[Scored] = []
    if not args.no_baseline:
        always, thresholded = baseline(data, theirs)
        print(always.line("baseline (always)"))
        print(thresholded.line("baseline (p ≥ 0.5)"))
    if args.ceiling:
        print(f"  ceiling of policybot's confidence:   {ceiling(ours)}")
        if theirs:
            print(f"  ceiling of the baseline's probability: {ceiling(theirs)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", default="5,10,20", help="example questions per entry, comma-separated")
    parser.add_argument("--seed", type=int, default=77)
    parser.add_argument("--oos-examples", type=int, default=5, help="held-out questions in out-of-scope.yaml")
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--errors", type=int, default=0, help="show this many confidently wrong answers")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="the best any threshold could do (chosen on the test questions)",
    )
    args = parser.parse_args()
    print("targets: confidently wrong ≤ 5 %, out of scope declined ≥ 85 %, ranking ≥ 75 %, right ≥ 60 %")
    for examples in (int(n) for n in args.examples.split(",")):
        await run(examples, args)


if __name__ == "__main__":
    asyncio.run(main())
