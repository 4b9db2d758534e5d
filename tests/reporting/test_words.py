"""The forecast in words: every verdict band, honest rounding, deals described, the diagnosis agreeing."""

from __future__ import annotations

import pytest

from forecast.reporting.terminal import diagnosis_lines
from forecast.reporting.words import chance, deal_label, deals_sentence, verdict


@pytest.mark.parametrize(
    ("probability", "words"),
    [
        (1.0, "all but certain"),
        (0.99, "all but certain"),
        (0.9899, "on track"),
        (0.80, "on track"),
        (0.7999, "within reach but at risk"),
        (0.58, "within reach but at risk"),
        (0.50, "within reach but at risk"),
        (0.4999, "unlikely"),
        (0.10, "unlikely"),
        (0.0999, "a long shot"),
        (0.01, "a long shot"),
        (0.007, "out of reach"),
        (0.0, "out of reach"),
    ],
)
def test_each_verdict_band(probability, words):
    assert verdict(probability) == words


@pytest.mark.parametrize(
    ("probability", "shown"),
    [
        (0.69, "69 %"),
        (0.7996, "79.96 %"),  # not "80 %": that would be on track
        (0.4996, "49.96 %"),
        (0.007, "0.7 %"),  # not "1 %", which is a long shot
        (0.0004, "< 0.1 %"),
        (0.9951, "99.5 %"),
        (0.9996, "> 99.9 %"),  # not "100 %"
        (0.0, "0 %"),
        (1.0, "100 %"),
    ],
)
def test_a_chance_is_never_rounded_across_its_verdict(probability, shown):
    assert chance(probability) == shown


def test_a_deal_is_described_by_the_columns_the_export_has():
    row = {"deal_id": "OPP-1", "account": "Acme", "owner": "Ann", "stage": "Proposal", "amount": 12_500.0}
    assert deal_label(row) == "OPP-1 (Acme, Ann, Proposal, 12,500)"
    assert deal_label({**row, "account": None, "stage": None}, "3.1") == "OPP-1 (Ann, 12,500; 3.1)"


def _matter(probability, deals=(), reason=None):
    return {"probability": probability, "trials": 20_000, "deals": list(deals), "reason": reason}


def test_deals_sentence_names_the_deals_or_says_why_none():
    row = {
        "deal_id": "OPP-1",
        "account": None,
        "owner": "Ann",
        "stage": None,
        "amount": 500.0,
        "stake": 0.079,
    }
    assert deals_sentence(_matter(0.6, [row])) == (
        "The deal that matters most (points of P(hit) lost if the deal does not land in the period): "
        "OPP-1 (Ann, 500; 7.9)."
    )
    assert deals_sentence(_matter(0.6, [row, row])).startswith("The 2 deals that matter most")
    assert deals_sentence(_matter(0.6, reason="within_error")).startswith(
        "No deal stands out: the top deals' stakes are within Monte Carlo error of each other at 20,000"
    )
    assert deals_sentence(_matter(0.995, reason="no_deal_decides")) == (
        "No single deal decides it: losing any one costs less than a point of P(hit)."
    )
    assert deals_sentence(_matter(0.002, reason="no_deal_decides")) == "No single deal changes that."


@pytest.mark.parametrize(
    ("probability", "words"),
    [(0.577, "within reach but at risk"), (0.85, "on track"), (0.995, "all but certain")],
)
def test_expected_revenue_above_quota_is_on_track_only_if_p_hit_says_so(probability, words):
    """The issue's report said "On track" at P(hit) 58 %: the words now follow P(hit)."""
    diagnosis = {
        "target": "quota", "at_least": 1_000_000.0, "expected_revenue": 1_086_246.0,
        "probability": probability, "status": "covered",
    }  # fmt: skip
    lines = diagnosis_lines(diagnosis)
    assert (
        lines[-1]
        == f"Expected revenue covers the quota; at P(hit) {100 * probability:.1f} % that is {words}."
    )
