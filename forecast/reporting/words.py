"""The forecast in words: a verdict on each chance, the deals that matter as a manager knows them."""

from __future__ import annotations

from typing import Any

VERDICTS = (  # (lowest P(hit), words), highest first
    (0.99, "all but certain"),
    (0.80, "on track"),
    (0.50, "within reach but at risk"),
    (0.10, "unlikely"),
    (0.01, "a long shot"),
    (0.0, "out of reach"),
)


def verdict(probability: float) -> str:
    """What a chance to hit means to a manager, from "all but certain" (>= 99 %) to "out of reach" (< 1 %)."""
    return next(words for lowest, words in VERDICTS if probability >= lowest)


def chance(probability: float) -> str:
    """A probability in whole percent, with a decimal more where rounding would change its verdict
    (79.6 %, not 80 %) or show a certainty or an impossibility it is not (0.7 %, not 1 %)."""
    if 0.0 < probability < 0.001:
        return "< 0.1 %"
    if 0.999 < probability < 1.0:
        return "> 99.9 %"
    digits = 0
    while digits < 2 and _misleads(round(100 * probability, digits) / 100, probability):
        digits += 1
    return f"{100 * probability:.{digits}f} %"


def _misleads(shown: float, probability: float) -> bool:
    return verdict(shown) != verdict(probability) or (shown in (0.0, 1.0) and shown != probability)


DESCRIBED = ("account", "owner", "stage")  # what a manager knows a deal by, beside its id and amount


def described_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Those of account, owner and stage that the export has (some deal has a value)."""
    return [key for key in DESCRIBED if any(row.get(key) for row in rows)]


def deal_label(row: dict[str, Any], note: str | None = None) -> str:
    """A deal as its owner knows it: id, then account, owner, stage and amount where the export has them."""
    known = [row.get(key) for key in DESCRIBED]
    details = ", ".join([value for value in known if value] + [f"{row['amount']:,.0f}"])
    return f"{row['deal_id']} ({details}{'' if note is None else f'; {note}'})"


def deals_sentence(matter: dict[str, Any]) -> str:
    """``deals_that_matter`` in one sentence: the deals named, or why none is."""
    named = matter["deals"]
    if named:
        listed = ", ".join(deal_label(row, f"{100 * row['stake']:.1f}") for row in named)
        head = "The deal that matters most" if len(named) == 1 else f"The {len(named)} deals that matter most"
        return f"{head} (points of P(hit) lost if the deal does not land in the period): {listed}."
    if matter["reason"] == "within_error":
        return (
            f"No deal stands out: the top deals' stakes are within Monte Carlo error of each other at "
            f"{matter['trials']:,} trials (add trials to tell them apart)."
        )
    if verdict(matter["probability"]) == "out of reach":
        return "No single deal changes that."
    return "No single deal decides it: losing any one costs less than a point of P(hit)."
