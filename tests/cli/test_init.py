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


FRENCH = (
    "Référence,Nom de l'affaire,Montant,Date de clôture,Étape,Probabilité,Propriétaire\n"
    "F1,Acme,1000,30/11/2026,Proposition,40,Hélène\n"
    "F2,Beta,2000.5,15/12/2026,Proposition,60,Loïc\n"
    "F3,Gamma,500,01/01/2027,Découverte,,Hélène\n"
    "F4,Delta,700,13/10/2026,Gagné,100,Loïc\n"
    "F5,Eps,300,20/10/2026,Perdu,0,Loïc\n"
)
FRENCH_OUTPUT = """\
read deals.csv: utf-8, delimiter ',', header on row 1
deals.csv: columns recognised:
  deal_id            <- 'Référence' (usual name)
  amount             <- 'Montant' (usual name)
  stage              <- 'Étape' (usual name)
  close_date         <- 'Date de clôture' (usual name)
  probability        <- 'Probabilité' (usual name)
  owner              <- 'Propriétaire' (usual name)
  not used: "Nom de l'affaire"
stages (deals, their amount as read, win rate):
  Découverte       1 deal              500  win rate 0.1 (generic default for its name)
  Proposition      2 deals           3,000  win rate 0.5 (mean of its 2 probabilities)
  Gagné            1 deal                -  won: booked when closed in the period
  Perdu            1 deal                -  lost: left out
decided:
  probability_scale: percent (values above 1)
  date_format: "%d/%m/%Y" (every close date fits it, and no other)
not decided (edit the scenario):
  stage 'Découverte': no probability in the export; win rate 0.1 is a generic default, edit it
wrote q4.yaml; next: forecast run q4.yaml
"""


def test_init_says_what_it_decided_and_what_it_could_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deals.csv").write_text(FRENCH, encoding="utf-8")
    made = invoke("init", "deals.csv", "--period", PERIOD, "-o", "q4.yaml")
    assert (made.exit_code, made.stdout) == (0, FRENCH_OUTPUT)
    assert invoke("run", "q4.yaml", "--trials", 200).exit_code == 0


def test_init_keeps_an_existing_scenario_unless_forced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deals.csv").write_text(FRENCH, encoding="utf-8")
    (tmp_path / "q4.yaml").write_text("mine")
    refused = invoke("init", "deals.csv", "--period", PERIOD, "-o", "q4.yaml")
    assert (refused.exit_code, refused.stderr) == (
        2,
        "Error: q4.yaml: already exists; give --force to replace it, or another -o\n",
    )
    assert (tmp_path / "q4.yaml").read_text() == "mine"
    assert invoke("init", "deals.csv", "--period", PERIOD, "-o", "q4.yaml", "--force").exit_code == 0
    assert (tmp_path / "q4.yaml").read_text().startswith("# Written by `forecast init`")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (["--period", "2026-Q5"], "Error: period '2026-Q5' is not a quarter (2026-Q3), a month"),
        (
            ["--period", PERIOD, "--as-of", "2027-01-02"],
            "Error: as_of 2027-01-02 is outside the period 2026-Q4 (2026-10-01..2026-12-31)\n",
        ),  # fmt: skip
        (["--period", PERIOD, "--rate", "USD"], "Error: --rate 'USD': expected CANONICAL=HEADER\n"),
        (["--period", PERIOD, "--rate", "USD=-1"], "Error: --rate USD=-1: expected a number > 0"),
        (["--period", PERIOD, "--column", "amount=Nope"], "Error: --column amount=Nope: no such column"),
    ],
)
def test_init_refuses_bad_options_with_one_line_each(options, error, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deals.csv").write_text(FRENCH, encoding="utf-8")
    refused = invoke("init", "deals.csv", *options)
    assert refused.exit_code == 2
    assert refused.stderr.startswith(error)
    assert not (tmp_path / "scenario.yaml").exists()
