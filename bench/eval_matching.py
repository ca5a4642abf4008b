"""Matching quality on a question set: top-1 accuracy in scope, abstention out of scope.

    python bench/eval_matching.py [tests/bot/data/devset.yaml | bench/data/holdout.yaml] [--errors]

Runs the shipped knowledge base through the same path as `policybot match` and prints the figures
beside the targets (≥ 90 % in scope answered right, ≥ 90 % out of scope not answered). The confidence
is fitted when the knowledge base loads (bot/calibration.py); nothing here is fitted to these sets.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from bot.conversation import Conversation
from bot.knowledge import KnowledgeBase
from bot.knowledge_loader import default_knowledge_dir, load_knowledge

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Score:
    in_scope: int
    correct: int
    suggested: int
    out_scope: int
    abstained: int
    errors: tuple[tuple[str, str | None, str | None, tuple[str, ...], float], ...]

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.in_scope, 1)

    @property
    def abstention(self) -> float:
        return self.abstained / max(self.out_scope, 1)


def evaluate(conversation: Conversation, questions: list[dict[str, str | None]]) -> Score:
    in_scope = correct = suggested = out_scope = abstained = 0
    errors = []
    for item in questions:
        question, expect = str(item["q"]), item.get("expect")
        result = conversation.match(question)
        if expect is None:
            out_scope += 1
            abstained += result.answer_id is None
            ok = result.answer_id is None
        else:
            in_scope += 1
            correct += result.answer_id == expect
            suggested += result.answer_id is None and expect in result.suggestions
            ok = result.answer_id == expect
        if not ok:
            errors.append((question, expect, result.answer_id, result.suggestions, result.confidence))
    return Score(in_scope, correct, suggested, out_scope, abstained, tuple(errors))


def leave_one_out(kb: KnowledgeBase) -> Score:
    """Each example question asked of a knowledge base without it: how well the examples generalise."""
    questions: list[dict[str, str | None]] = []
    hits = total = 0
    errors = []
    for entry in kb.entries.values():
        for lang, texts in entry.questions.items():
            for number, text in enumerate(texts):
                fewer = dict(entry.questions)
                fewer[lang] = texts[:number] + texts[number + 1 :]
                entries = dict(kb.entries)
                entries[entry.id] = replace(entry, questions=fewer)
                result = Conversation(replace(kb, entries=entries)).match(text, lang)
                total += 1
                hits += result.answer_id == entry.id
                if result.answer_id != entry.id:
                    errors.append((text, entry.id, result.answer_id, result.suggestions, result.confidence))
    del questions
    return Score(total, hits, 0, 0, 0, tuple(errors))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sets",
        nargs="*",
        type=Path,
        default=[ROOT / "tests/bot/data/devset.yaml", ROOT / "bench/data/holdout.yaml"],
    )
    parser.add_argument("--errors", action="store_true", help="list every miss")
    parser.add_argument(
        "--loo", action="store_true", help="leave-one-out over the knowledge base's own examples"
    )
    parser.add_argument("--knowledge", type=Path, default=None, help="knowledge folder (default: shipped)")
    args = parser.parse_args()
    kb = await load_knowledge(args.knowledge or default_knowledge_dir())
    conversation = Conversation(kb)
    if args.loo:
        score = leave_one_out(kb)
        print(
            f"leave-one-out: {score.correct}/{score.in_scope} = {score.accuracy:.1%} of example questions "
            "answered right by the other examples"
        )
        for question, expect, got, suggestions, confidence in score.errors if args.errors else ():
            print(f"  {question!r}: expected {expect}, got {got} {list(suggestions)} ({confidence:.2f})")
        return
    for path in args.sets:
        questions = yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]
        score = evaluate(conversation, questions)
        print(
            f"{path.name}: in scope {score.correct}/{score.in_scope} = {score.accuracy:.1%} answered right "
            f"(+{score.suggested} offered as a suggestion; target ≥ 90%); out of scope "
            f"{score.abstained}/{score.out_scope} = {score.abstention:.1%} abstained (target ≥ 90%)"
        )
        if args.errors:
            by_kind: Counter[str] = Counter()
            for question, expect, got, suggestions, confidence in score.errors:
                kind = "wrong" if got else ("suggested" if expect in suggestions else "missed")
                if expect is None:
                    kind = "answered-out-of-scope"
                by_kind[kind] += 1
                got_text = f"{got} {list(suggestions)} ({confidence:.2f})"
                print(f"  [{kind}] {question!r}: expected {expect}, got {got_text}")
            print(f"  {dict(by_kind)}")


if __name__ == "__main__":
    asyncio.run(main())
