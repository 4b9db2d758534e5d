"""``forecast init`` end to end: each generated CRM export goes through ``forecast init`` and
``forecast run --json``, and the four numbers a person counts by hand come out as the generator
counted them from the deals it wrote (tests/fixtures/make_exports.py), never by reading the file
back with the project's code."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from forecast.cli.commands import cli
from tests.fixtures.capabilities import needs
from tests.fixtures.make_exports import AS_OF, PERIOD, SHAPES, TRUTH_KEYS, write_export

# What each export needs beyond init itself (see tests/fixtures/capabilities.py):
# every shape but plain_open has won and lost rows (closed).
NEEDS = {
    "french_cp1252": {"dialect", "closed"},
    "french_utf8_bom": {"dialect", "closed"},
    "salesforce_report": {"dialect", "closed"},
    "salesforce_products": {"dialect", "closed"},
    "hubspot": {"closed"},
    "excel_title_totals": {"dialect", "closed"},
    "multi_currency": {"closed"},
    "plain_open": set(),
}
TRIALS = 2000


def _needs(name: str):
    return pytest.param(name, marks=needs(*NEEDS[name]), id=name)


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(arg) for arg in args], catch_exceptions=False)


def test_every_shape_has_its_needs():
    assert set(NEEDS) == set(SHAPES)


@pytest.mark.parametrize("name", [_needs(name) for name in SHAPES])
def test_init_then_run_counts_as_by_hand(name, tmp_path):
    export = write_export(name, tmp_path)
    scenario = tmp_path / "scenario.yaml"
    made = invoke(
        "init", export.path, "--period", PERIOD, "--as-of", AS_OF, "-o", scenario, *export.init_args
    )
    assert made.exit_code == 0, made.output
    ran = invoke("run", scenario, "--json", "--trials", TRIALS)
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.stdout)
    assert result["open_deals"] == export.truth["open_deals"]
    for key in TRUTH_KEYS[1:]:
        assert math.isclose(result[key], export.truth[key], rel_tol=1e-9, abs_tol=1e-6), key


def test_the_generator_counts_its_own_deals():
    """The truth follows the stated rules on a hand-checked case: overdue open deals count inside,
    won deals only inside the period, blank amounts are left out, amounts converted at the rates."""
    from tests.fixtures.make_exports import Deal, truth

    def deal(amount, close, status, probability=0.5, currency="EUR"):
        return Deal("D", "n", amount, close, "s", status, probability, "o", True, currency)

    import datetime as dt

    deals = [
        deal(100.0, dt.date(2026, 9, 1), "open"),  # overdue: inside
        deal(200.0, dt.date(2027, 2, 1), "open"),  # after the period: open, not inside
        deal(None, dt.date(2026, 11, 1), "open"),  # blank amount: left out
        deal(50.0, dt.date(2026, 11, 1), "open", 0.2, "USD"),
        deal(1000.0, dt.date(2026, 9, 30), "won"),  # last quarter: not booked
        deal(300.0, dt.date(2026, 12, 31), "won"),
        deal(400.0, dt.date(2026, 11, 1), "lost"),
    ]
    assert truth(deals, {"USD": 0.5}) == {
        "open_deals": 3,
        "open_pipeline": 125.0,
        "booked": 300.0,
        "weighted_pipeline": 100 * 0.5 + 25 * 0.2,
    }
