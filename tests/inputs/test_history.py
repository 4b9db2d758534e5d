"""Past deals as ``History``: the value a win brought in, the price an open deal is forecast at."""

from __future__ import annotations

import numpy as np
import pytest

from forecast.config.specs import Prices
from forecast.errors import PipelineError
from forecast.inputs.history import HistorySpec, list_prices, load_history

HISTORY = """Id,Result,Amount,Won Amount,Product,Closed
A,Won,100,80,GTX,2026-01-10
B,Won,50,,MG,2026-01-11
C,Lost,70,,GTX,2026-01-12
D,Open,,,MG Pro,
"""


def _load(tmp_path, prices: Prices | None = None):
    (tmp_path / "h.csv").write_text(HISTORY)
    spec = HistorySpec(columns={"deal_id": "Id", "outcome": "Result", "close_date": "Closed"}, prices=prices)
    return load_history(tmp_path / "h.csv", spec)


def test_a_win_brings_in_its_won_amount_else_its_amount(tmp_path):
    history = _load(tmp_path)
    np.testing.assert_array_equal(history.won_value, [80.0, 50.0, np.nan, np.nan])
    np.testing.assert_array_equal(history.price, [100.0, 50.0, 70.0, np.nan])  # no price list: the amount


def test_open_deals_are_priced_from_the_list_joined_on_its_key(tmp_path):
    (tmp_path / "p.csv").write_text("product,sales_price\nGTX,90\n,\nMG,40\nMG Pro,45\n")  # a blank line
    prices = Prices(path=str(tmp_path / "p.csv"), key="product", price="sales_price", aliases={"GTX": "MG"})
    history = _load(tmp_path, prices)
    np.testing.assert_array_equal(history.price, [40.0, 40.0, 40.0, 45.0])
    np.testing.assert_array_equal(history.won_value, [80.0, 50.0, np.nan, np.nan])  # prices change no win
    np.testing.assert_array_equal(
        list_prices(prices, np.array(["MG", "GTX Pro"], dtype=object)), [40.0, np.nan]
    )  # a key the list lacks: no price


def test_bad_price_lists_name_file_row_and_column(tmp_path):
    (tmp_path / "p.csv").write_text("product,sales_price\nGTX,90\nMG,lots\n")
    prices = Prices(path=str(tmp_path / "p.csv"), key="product", price="sales_price")
    with pytest.raises(PipelineError) as error:
        list_prices(prices, np.array(["GTX"], dtype=object))
    assert error.value.problems == [
        f"{tmp_path / 'p.csv'}: row 3, column 'sales_price': 'lots' is not a number"
    ]
    with pytest.raises(PipelineError) as error:
        list_prices(prices.model_copy(update={"price": "price"}), np.array(["GTX"], dtype=object))
    assert error.value.problems == [f"{tmp_path / 'p.csv'}: missing column 'price'"]
