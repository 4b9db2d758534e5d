"""Line items: rows sharing a deal id summed into one deal, product targets counting their share."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecast.cli import cli
from forecast.config.loading import parse_scenario
from forecast.engine.simulate import simulate
from forecast.errors import PipelineError
from forecast.inputs.deals import LineItems
from forecast.inputs.pipeline import load_deals
from tests.builders import make_deals

HEADER = "Deal ID,Amount,Stage,Close Date,Product,Region\n"
STAGES = "stages:\n  - {name: Commit, win_rate: 1.0, slip: 0.0}\n"
LINES = (
    "A,100,Commit,2026-08-01,x,EU\n"
    "A,50,Commit,2026-08-01,y,EU\n"
    "B,10,Commit,2026-08-02,x,US\n"
    "A,7,Commit,2026-08-01,z,EU\n"
)


def write(folder: Path, rows: str, pipeline: str = "", extra: str = "") -> Path:
    (folder / "deals.csv").write_text(HEADER + rows)
    (folder / "s.yaml").write_text(
        f"period: 2026-Q3\npipeline:\n  path: deals.csv\n{pipeline}simulation: {{trials: 20, seed: 1}}\n"
        + STAGES
        + extra
    )
    return folder / "s.yaml"


def load(folder: Path, rows: str, pipeline: str = ""):
    path = write(folder, rows, pipeline)
    scenario = parse_scenario(path.read_text(), path)
    return load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)


@pytest.mark.parametrize("pipeline", ["  aggregate: sum\n", ""])
def test_rows_of_one_deal_are_summed_in_the_order_of_their_first_row(tmp_path, pipeline):
    deals = load(tmp_path, LINES, pipeline)
    assert list(deals.deal_id) == ["A", "B"]
    assert list(deals.amount) == [157.0, 10.0]
    assert list(deals.rows) == [2, 4]
    assert list(deals.attributes["product"]) == ["x + y + z", "x"]
    assert deals.rules.merged == 2
    assert deals.rules.aggregate == ("sum" if pipeline else "detected")
    assert list(deals.share({"product": ["y", "z"]})) == [57 / 157, 0.0]
    assert list(deals.matching({"product": "y"})) == [True, False]


def test_one_amount_repeated_on_every_line_is_not_taken_for_line_items(tmp_path):
    """An export that repeats the deal's total on each product row would be multiplied by summing."""
    rows = "A,100,Commit,2026-08-01,x,EU\nA,100,Commit,2026-08-01,y,EU\n"
    with pytest.raises(PipelineError) as raised:
        load(tmp_path, rows)
    path = tmp_path / "deals.csv"
    assert raised.value.problems == [
        f"{path}: row 3, column 'Deal ID' (deal_id): 'A' duplicates row 2",
        f"{path}: if rows sharing a deal id are line items of one deal (one row per product), set "
        "pipeline.aggregate: sum to add them up",
    ]
    assert list(load(tmp_path, rows, "  aggregate: sum\n").amount) == [200.0]


def test_one_deal_repeating_its_amount_is_enough_to_refuse_detection(tmp_path):
    rows = LINES + "C,100,Commit,2026-08-01,x,EU\nC,100,Commit,2026-08-01,y,EU\n"
    with pytest.raises(PipelineError) as raised:
        load(tmp_path, rows)
    assert raised.value.problems[-1].endswith("set pipeline.aggregate: sum to add them up")


def test_the_same_product_twice_is_not_detected(tmp_path):
    with pytest.raises(PipelineError):
        load(tmp_path, "A,100,Commit,2026-08-01,x,EU\nA,50,Commit,2026-08-01,x,EU\n")


def test_aggregate_none_keeps_a_repeated_id_an_error(tmp_path):
    with pytest.raises(PipelineError) as raised:
        load(tmp_path, LINES, "  aggregate: none\n")
    assert raised.value.problems[0].endswith("'A' duplicates row 2")


def test_line_items_that_disagree_name_both_rows(tmp_path):
    rows = LINES.replace("A,50,Commit,2026-08-01,y,EU", "A,50,Commit,2026-09-01,y,EU")
    with pytest.raises(PipelineError) as raised:
        load(tmp_path, rows, "  aggregate: sum\n")
    assert raised.value.problems == [
        f"{tmp_path / 'deals.csv'}: rows 2 and 3 share deal id 'A' but differ in column 'Close Date' "
        "(close_date): '2026-08-01' and '2026-09-01'; the line items of one deal agree on everything but "
        "amount and product"
    ]


def test_product_targets_count_the_products_amount_and_the_deal_once(tmp_path):
    targets = (
        "targets:\n"
        "  - {name: y, metric: revenue, at_least: 50, where: {product: y}}\n"
        "  - {name: y more, metric: revenue, at_least: 50.5, where: {product: y}}\n"
        "  - {name: x deals, metric: deals, at_least: 2, where: {product: x}}\n"
        "  - {name: x deals more, metric: deals, at_least: 3, where: {product: x}}\n"
    )
    path = write(tmp_path, LINES, "  aggregate: sum\n", targets)
    result = CliRunner().invoke(cli, ["run", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["open_deals"] == 2
    assert summary["open_pipeline"] == 167.0
    assert [target["probability"] for target in summary["targets"]] == [1.0, 0.0, 1.0, 0.0]
    assert summary["rows"]["line_items_merged"] == 2


_deal = st.tuples(
    st.sampled_from(["EU", "US"]),  # region: agrees between a deal's lines
    st.sampled_from(["Commit", "Closed Won"]),  # open, or won in the period (booked)
    st.lists(  # its lines: distinct products, each with an amount
        st.tuples(st.sampled_from(["x", "y", "z"]), st.integers(1, 1000)),
        min_size=1,
        max_size=3,
        unique_by=lambda line: line[0],
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    deals=st.lists(_deal, min_size=1, max_size=6),
    shuffle=st.randoms(use_true_random=False),
    products=st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=2, unique=True),
    regions=st.sampled_from([None, "EU", "US"]),
)
def test_line_item_targets_match_a_count_by_hand(tmp_path, deals, shuffle, products, regions):
    """Every deal won: a product target's revenue and deals are those of the rows it matches, however
    the lines are ordered, whether the deal is open or booked, and whatever else ``where`` names."""
    rows = [
        (f"D{i}", amount, stage, product, region)
        for i, (region, stage, lines) in enumerate(deals)
        for product, amount in lines
    ]
    shuffle.shuffle(rows)
    where = {"product": products, **({"region": regions} if regions else {})}
    matching = [row for row in rows if row[3] in products and (regions is None or row[4] == regions)]
    revenue = sum(row[1] for row in matching)
    deal_count = len({row[0] for row in matching})
    text = "".join(f"{d},{a},{s},2026-08-01,{p},{r}\n" for d, a, s, p, r in rows)
    targets = (
        f"targets:\n  - {{name: r, metric: revenue, at_least: 1, where: {json.dumps(where)}}}\n"
        f"  - {{name: d, metric: deals, at_least: 1, where: {json.dumps(where)}}}\n"
    )
    path = write(tmp_path, text, "  aggregate: sum\n", targets)
    scenario = parse_scenario(path.read_text(), path)
    loaded = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    forecast = simulate(scenario, loaded)
    assert forecast.trials.targets["r"] == pytest.approx([revenue] * 20, rel=1e-12)
    assert list(forecast.trials.targets["d"]) == [deal_count] * 20
    assert forecast.trials.revenue == pytest.approx([sum(row[1] for row in rows)] * 20, rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(
    lines=st.lists(st.tuples(st.integers(0, 4), st.sampled_from("xyz"), st.integers(1, 100)), min_size=1),
    picks=st.lists(st.integers(0, 4), max_size=8),
    wanted=st.lists(st.sampled_from("xyz"), min_size=1, unique=True),
)
def test_subset_and_concat_keep_each_deals_lines(lines, picks, wanted):
    """A deal's share and match follow it through ``subset`` (any order, repeats) and ``concat``."""
    deal = np.array([line[0] for line in lines], dtype=np.int64)
    amount = np.array([line[2] for line in lines], dtype=float)
    deals = make_deals(np.bincount(deal, weights=amount, minlength=5), product=["?"] * 5)
    deals.lines = LineItems(deal, amount, {"product": np.array([line[1] for line in lines], dtype=object)})
    where = {"product": wanted}
    share, match = deals.share(where), deals.matching(where)
    picked = deals.subset(np.array(picks, dtype=np.int64))
    np.testing.assert_array_equal(picked.share(where), share[picks])
    np.testing.assert_array_equal(picked.matching(where), match[picks])
    both = picked.concat(make_deals([7.0], product=["x"]))
    np.testing.assert_array_equal(both.share(where), [*share[picks], 1.0])
    np.testing.assert_array_equal(both.matching(where), [*match[picks], "x" in wanted])
