"""What the matcher decides for one question: answer, offer "did you mean", or say it does not know.

The ranking (`bot.matching`) gives the best-scoring entries with each signal; the confidence fitted on
the knowledge base's own examples (`bot.calibration`) turns them into a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import calibration
from bot.calibration import Fit

SUGGEST_WITHIN = 0.7  # suggestions score at least this share of the best one (or of its word signal)
MAX_SUGGESTIONS = 3
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
    usual: float = 0.0  # the resemblance its own example questions usually have with it


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


def signals(ranked: tuple[Match, ...]) -> tuple[float, float, float, float]:
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


def familiar(match: Match) -> float:
    """How much closer (or further) the question is to the entry than its own examples usually are."""
    return match.resemblance - match.usual


def choices(ranked: tuple[Match, ...]) -> tuple[str, ...]:
    """The entries a "did you mean" would offer."""
    real = [m for m in ranked if m.entry_id != OUT_OF_SCOPE]
    if not real:
        return ()
    # Close by either signal: the learned one does not know HR's synonyms ("pictures" for "photos").
    floor, words_floor = real[0].score * SUGGEST_WITHIN, max(m.words for m in real) * SUGGEST_WITHIN
    close = [m for m in real if m.score >= floor or (m.words >= words_floor and m.score > 0.5 * floor)]
    return tuple(m.entry_id for m in close)[:MAX_SUGGESTIONS]


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
        *signals(ranked),
        calibration.informative(information),
        best.closeness,
        best.coverage,
        familiar(best),
    )
    confidence = fit.confidence(values)
    specific = information >= fit.min_information
    suggestions = choices(ranked)
    verdict = calibration.verdict_of(fit, values, max(information, fit.min_information))
    if verdict == "answer" and (specific or len(suggestions) < 2):
        return Result(lang, best.entry_id, confidence, (), ranked, terms, answer_at=fit.answer_at)
    if verdict == "fallback" and (specific or len(suggestions) < 2):
        # (a vague question in words several entries use is offered those entries: it is about them)
        return Result(lang, None, confidence, (), ranked, terms, specific, fit.answer_at)
    return Result(lang, None, confidence, suggestions, ranked, terms, specific, fit.answer_at)
