"""The confidence is fitted on the knowledge base that is loaded, and HR's one setting moves the line."""

from __future__ import annotations

import random
from pathlib import Path

from bot.calibration import Observation, cached, fit, remember, signals


def observations(seed: int = 3) -> list[Observation]:
    """Examples whose best score and lead tell right from wrong, as on a real knowledge base."""
    rng = random.Random(seed)
    seen = []
    for _ in range(300):
        best, lead = rng.uniform(0.05, 0.9), rng.uniform(0.0, 0.4)
        right = rng.random() < min(0.98, best + lead)
        seen.append(
            Observation(best, lead, lead, lead, right, right or rng.random() < 0.5, 3.0, closeness=best)
        )
        seen.append(
            Observation(best * 0.6, lead * 0.3, 0.0, 0.0, False, False, 3.0, orphan=True, closeness=best / 2)
        )
    return seen


def asked(best: float, lead: float) -> tuple[float, ...]:
    """A question's signals: its best entry scores `best`, `lead` ahead of the next one."""
    return signals(Observation(best, lead, lead, lead, False, False, 3.0, closeness=best))


def test_the_confidence_grows_with_the_score_and_the_lead() -> None:
    fitted = fit(observations())

    assert fitted.confidence(asked(0.8, 0.3)) > 0.9
    assert fitted.confidence(asked(0.2, 0.01)) < 0.3
    assert fitted.confidence(asked(0.5, 0.2)) > fitted.confidence(asked(0.5, 0.02))


def test_answer_when_sure_trades_answers_for_questions_back() -> None:
    bold, careful = fit(observations(), answer_when_sure=55), fit(observations(), answer_when_sure=90)

    assert (bold.answer_at, careful.answer_at) == (0.55, 0.9)
    assert bold.answered > careful.answered
    assert careful.answered_right / careful.answered > bold.answered_right / bold.answered
    assert careful.suggested + careful.fallback > bold.suggested + bold.fallback
    assert "it answers when at least 90% sure (answer_when_sure)" in careful.summary()


def test_with_no_examples_to_learn_from_the_prior_is_cautious() -> None:
    prior = fit([])

    assert prior.confidence(asked(0.9, 0.5)) > prior.answer_at > prior.confidence(asked(0.3, 0.02))


def test_a_fit_is_kept_per_version_and_code(tmp_path: Path) -> None:
    fitted = fit(observations())
    remember(tmp_path, "abc123", fitted)

    assert cached(tmp_path, "abc123") == fitted
    assert cached(tmp_path, "other") is None
    (next(tmp_path.iterdir())).write_text("{not json", encoding="utf-8")
    assert cached(tmp_path, "abc123") is None  # a damaged file is fitted again, never an error
