"""Confidence that means what it says on the knowledge base actually loaded, fitted when it is loaded.

Every knowledge base is different: "a score of 0.4" is a sure thing on one and a coin toss on another.
So at load time the bot asks itself its own example questions, each with its own copy left out (as if
an employee had typed it), the same questions again as if their entry did not exist (leave-entry-out:
what a question about something the knowledge base does not cover looks like, in its own field's words)
and the `out_of_scope` examples; from what it would have done it fits, by logistic regression on the
best score, its lead over the runner-up (overall and per signal), how much the question says, the
overlap with the closest example, the share of the question the entry explains and how the resemblance
compares with what the entry's own examples usually have (`signals`):

* the probability that the best entry is the right one (the confidence the bot answers at), and
* the probability that the right entry is among the "did you mean" choices (below an even chance of
  that, a list of choices helps nobody: the bot says it does not know and how to reach HR).

HR shifts the trade-off with one setting, `answer_when_sure` (settings in the knowledge folder): the
confidence, in percent, the bot needs to answer outright. Lower answers more, higher asks more.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ANSWER_WHEN_SURE = 65  # percent; HR's default trade-off (see docs/hr.md)
SUGGEST_WHEN = 0.5  # offer choices when the right entry is at least this likely among them
PRIOR_WEIGHT = 5.0  # pseudo-observations keeping a fit on a tiny knowledge base sane
# Examples asked as if their entry did not exist count this much each in the answer fit (about one
# question in six is about something the knowledge base does not cover; bench/cross_validate.py), and
# not at all in the offer fit: "did you mean" is what an unsure bot should say, in scope or not.
ORPHAN_WEIGHT = 0.2
ORPHAN_OFFER_WEIGHT = 0.0
INFORMATION_QUANTILE = 0.02
# ... and never less than one word that at most half of the entries use (the index's IDF is
# log(1 + entries / entries using it)): a question only of words most entries use could mean any.
LEAST_INFORMATION = math.log(3)  # questions less informative than all but this share of examples: never sure


@dataclass(frozen=True)
class Observation:
    """One example asked with its own copy left out: what the bot ranked, and whether it was right."""

    best: float  # the best entry's score
    lead: float  # its lead over the runner-up (the out-of-scope examples included)
    words_lead: float  # the best entry's lead in the word signal alone
    resemblance_lead: float  # and in the learned signal alone
    right: bool  # the best entry is the example's own entry
    offered: bool  # its own entry is among the choices the bot would offer
    information: float
    out_of_scope: bool = False  # an out_of_scope example: no entry is right
    orphan: bool = False  # an example asked as if its entry did not exist: no entry is right
    declined: bool = False  # an out_of_scope example closest to the other out_of_scope examples
    closeness: float = 0.0  # the best entry's overlap with its closest example question
    coverage: float = 0.0  # the share of the question's meaning the best entry's vocabulary explains
    familiar: float = 0.0  # the best entry's resemblance less what its own examples usually have


@dataclass(frozen=True)
class Fit:
    """The fitted confidence and what the bot would do with its own examples at HR's setting."""

    right: tuple[float, ...]  # logistic coefficients: intercept, then one per signal (see `signals`)
    offered: tuple[float, ...]
    answer_at: float
    min_information: float
    examples: int = 0
    answered: int = 0
    answered_right: int = 0
    suggested: int = 0
    suggested_right: int = 0
    fallback: int = 0
    out_of_scope: int = 0
    out_of_scope_declined: int = 0
    orphans: int = 0  # examples asked as if their entry did not exist
    orphans_answered: int = 0  # ... and answered all the same (with another entry: wrongly)
    usual: tuple[float, ...] = ()  # per entry, how close its own examples are to it (kept with the fit)

    def confidence(self, signals: tuple[float, ...]) -> float:
        return _sigmoid(self.right, signals)

    def offer_chance(self, signals: tuple[float, ...]) -> float:
        return _sigmoid(self.offered, signals)

    def summary(self) -> str:
        """How the bot would treat its own examples, in HR's terms (for `policybot kb check`)."""
        n = max(self.examples, 1)
        text = (
            f"asked its own {self.examples} example questions (each without its own copy), the bot would "
            f"answer {self.answered / n:.0%} ({self.answered_right} of {self.answered} right), offer "
            f"'did you mean' for {self.suggested / n:.0%} (the right entry among them "
            f"{self.suggested_right} times) and say it does not know for {self.fallback / n:.0%}; "
            f"it answers when at least {self.answer_at:.0%} sure (answer_when_sure)"
        )
        if self.orphans:
            text += (
                f"; asked as if their entry did not exist, {self.orphans_answered / self.orphans:.0%} "
                "would still be answered (wrongly)"
            )
        if self.out_of_scope:
            text += (
                f"; {self.out_of_scope_declined} of {self.out_of_scope} out_of_scope examples would not be "
                "answered"
            )
        return text


def signals(o: Observation) -> tuple[float, ...]:
    """What the confidence is read from: the best score, its lead, the lead in each signal, and how
    much the question says (its words' IDF, capped)."""
    return (
        o.best,
        o.lead,
        o.words_lead,
        o.resemblance_lead,
        informative(o.information),
        o.closeness,
        o.coverage,
        o.familiar,
    )


def informative(information: float) -> float:
    return min(information, INFORMATION_CAP) / INFORMATION_CAP


def _sigmoid(coefficients: tuple[float, ...], values: tuple[float, ...]) -> float:
    z = coefficients[0] + sum(c * v for c, v in zip(coefficients[1:], values, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


def logistic(
    features: np.ndarray, labels: np.ndarray, prior: tuple[float, ...], weights: np.ndarray | None = None
) -> np.ndarray:
    """Logistic regression by Newton's method, with a ridge pulling towards `prior` (a handful of
    examples must not produce a cliff)."""
    x = np.column_stack([np.ones(len(features)), features]) if len(features) else np.zeros((0, len(prior)))
    beta = np.asarray(prior, dtype=np.float64)
    weights = np.ones(len(x)) if weights is None else weights
    ridge = PRIOR_WEIGHT * np.eye(len(prior))
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -40, 40)))
        gradient = x.T @ (weights * (p - labels)) + ridge @ (beta - np.asarray(prior))
        hessian = (x.T * (weights * p * (1 - p))) @ x + ridge
        step = np.linalg.solve(hessian, gradient)
        beta = beta - step
        if float(np.abs(step).max()) < 1e-7:
            break
    return beta


# Before any evidence: a best score of 0.5 with a lead of 0.1 is a fair chance. Deliberately weak.
PRIOR_RIGHT = (-4.0, 6.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
PRIOR_OFFERED = (-2.0, 6.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
INFORMATION_CAP = 10.0  # about four rare words: more does not make a question clearer


def fit(observations: list[Observation], answer_when_sure: float = ANSWER_WHEN_SURE) -> Fit:
    answer_at = min(max(answer_when_sure / 100.0, 0.5), 0.995)
    usable = [o for o in observations if not o.declined]
    features = np.asarray([signals(o) for o in usable], dtype=np.float64).reshape(-1, len(PRIOR_RIGHT) - 1)
    weights = np.asarray([ORPHAN_WEIGHT if o.orphan else 1.0 for o in usable], dtype=np.float64)
    right = logistic(features, np.asarray([o.right for o in usable], dtype=np.float64), PRIOR_RIGHT, weights)
    weights = np.asarray([ORPHAN_OFFER_WEIGHT if o.orphan else 1.0 for o in usable], dtype=np.float64)
    offered = logistic(
        features, np.asarray([o.offered for o in usable], dtype=np.float64), PRIOR_OFFERED, weights
    )
    informations = sorted(o.information for o in observations if not (o.out_of_scope or o.orphan))
    fitted = informations[int(INFORMATION_QUANTILE * (len(informations) - 1))] if informations else 0.0
    min_information = max(fitted, LEAST_INFORMATION)
    result = Fit(
        right=tuple(float(c) for c in right),
        offered=tuple(float(c) for c in offered),
        answer_at=answer_at,
        min_information=min_information,
    )
    return _tally(result, observations)


def _tally(result: Fit, observations: list[Observation]) -> Fit:
    inside = [o for o in observations if not (o.out_of_scope or o.orphan)]
    verdicts = [
        "fallback" if o.declined else verdict_of(result, signals(o), o.information) for o in observations
    ]
    mine = [v for o, v in zip(observations, verdicts, strict=True) if not (o.out_of_scope or o.orphan)]
    theirs = [v for o, v in zip(observations, verdicts, strict=True) if o.out_of_scope]
    orphans = [v for o, v in zip(observations, verdicts, strict=True) if o.orphan]
    return replace(
        result,
        examples=len(inside),
        answered=mine.count("answer"),
        answered_right=sum(o.right for o, v in zip(inside, mine, strict=True) if v == "answer"),
        suggested=mine.count("suggestions"),
        suggested_right=sum(o.offered for o, v in zip(inside, mine, strict=True) if v == "suggestions"),
        fallback=mine.count("fallback"),
        out_of_scope=len(theirs),
        out_of_scope_declined=sum(v != "answer" for v in theirs),
        orphans=len(orphans),
        orphans_answered=orphans.count("answer"),
    )


def verdict_of(result: Fit, values: tuple[float, ...], information: float) -> str:
    """ "answer", "suggestions" or "fallback" for a question's signals and information."""
    if result.confidence(values) >= result.answer_at and information >= result.min_information:
        return "answer"
    if result.offer_chance(values) >= SUGGEST_WHEN:
        return "suggestions"
    return "fallback"


# ------------------------------------------------------------------------------------ the fit cache
# Fitting asks a few hundred questions (about a second on a slow machine): `policybot ask`, which
# must answer in half a second, keeps the fit of each knowledge-base version in a small file.


@cache
def code_digest() -> str:
    """Changes whenever the matcher's code does, so a fit made by another version is never reused."""
    digest = hashlib.sha256()
    for name in (
        "analysis.py",
        "calibration.py",
        "decision.py",
        "languages.py",
        "matching.py",
        "postings.py",
        "similarity.py",
    ):
        digest.update(Path(__file__).with_name(name).read_bytes())
    return digest.hexdigest()[:16]


def cached(directory: Path, version: str) -> Fit | None:
    path = directory / f"fit-{version}-{code_digest()}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["right"], data["offered"] = tuple(data["right"]), tuple(data["offered"])
        data["usual"] = tuple(data.get("usual", ()))
        return Fit(**data)
    except (OSError, ValueError, TypeError, KeyError):  # none yet, or unreadable: fit again
        return None


def remember(directory: Path, version: str, fitted: Fit) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"fit-{version}-{code_digest()}.json"
        path.write_text(json.dumps(asdict(fitted)), encoding="utf-8")
    except OSError as exc:  # a read-only home: it costs a second next time, nothing more
        log.debug("could not keep the fitted confidence in %s: %s", directory, exc)
