"""Choose the matcher's signal weights by cross-validation over several knowledge bases, never one.

    python bench/cross_validate.py [--grid 0.25,0.35,0.5,0.65]

Knowledge bases: the shipped one (asked its development set, tests/bot/data/devset.yaml) and BANKING77
knowledge bases built as in bench/eval_outside.py with seeds 1-3 and 5, 10 and 20 examples per entry,
each asked 8 *training* questions per entry that are not among its examples (the test questions that
bench/eval_outside.py reports on are never used here). The figure is the right entry ranked first;
the weight with the best mean over the knowledge bases (each counts once) is what bot/matching.py uses.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from pathlib import Path

import yaml

import bot.matching
from bench.eval_outside import DATASET, read, split, write_folder
from bot.knowledge import KnowledgeBase
from bot.knowledge_loader import default_knowledge_dir, load_knowledge
from bot.matching import OUT_OF_SCOPE, Index

ROOT = Path(__file__).resolve().parent.parent


async def knowledge_bases() -> list[tuple[str, KnowledgeBase, list[tuple[str, str]]]]:
    shipped = await load_knowledge(default_knowledge_dir())
    dev = yaml.safe_load((ROOT / "tests/bot/data/devset.yaml").read_text(encoding="utf-8"))["questions"]
    out = [("shipped (dev set)", shipped, [(d["q"], d["expect"]) for d in dev if d["expect"]])]
    train = read(DATASET / "train.csv")
    for seed, examples in ((1, 5), (2, 10), (3, 20)):
        data = split(DATASET, examples, seed, 5)
        rng = random.Random(seed)
        asked = []
        for entry_id, questions in data.entries.items():
            rest = [q for q in train[data.intents[entry_id]] if q not in questions]
            asked += [(q, entry_id) for q in rng.sample(rest, 8)]
        with tempfile.TemporaryDirectory() as folder:
            write_folder(data, Path(folder))
            kb = await load_knowledge(Path(folder))
        out.append((f"BANKING77 seed {seed}, {examples} examples", kb, asked))
    return out


def top1(kb: KnowledgeBase, asked: list[tuple[str, str]]) -> float:
    index = Index(kb, fit=False)
    right = 0
    for question, expect in asked:
        ranked, _ = index.rank(question, lang=index.language(question, None))
        first = next((m.entry_id for m in ranked if m.entry_id != OUT_OF_SCOPE), None)
        right += first == expect
    return right / len(asked)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="0.0,0.25,0.5,0.65,0.8,0.9")
    args = parser.parse_args()
    bases = await knowledge_bases()
    results = []
    for weight in (float(w) for w in args.grid.split(",")):
        bot.matching.LEARNED_WEIGHT = weight
        scores = [top1(kb, asked) for _, kb, asked in bases]
        mean = sum(scores) / len(scores)
        results.append((mean, weight))
        shown = " | ".join(f"{name} {s:.1%}" for (name, _, _), s in zip(bases, scores, strict=True))
        print(f"learned weight {weight:.2f}: mean {mean:.1%} — {shown}")
    best = max(results)
    print(f"best: learned weight {best[1]:.2f} (mean right-entry-first {best[0]:.1%})")


if __name__ == "__main__":
    asyncio.run(main())
