"""Per-trial results as a table (``forecast run --samples``)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from forecast.engine.simulate import Forecast


def samples_table(forecasts: list[Forecast]) -> pa.Table:
    """One row per trial and scenario: revenue, slipped revenue, new logos, each target."""
    tables = []
    for forecast in forecasts:
        trials = forecast.trials
        columns = {
            "scenario": pa.array([forecast.scenario.label] * forecast.n_trials, pa.string()),
            "trial": np.arange(forecast.n_trials, dtype=np.int64),
            "revenue": trials.revenue,
            "slipped_revenue": trials.slipped,
            "new_logos": trials.new_logos,
            "new_pipeline_revenue": trials.new_pipeline,
        }
        for name, values in trials.targets.items():
            columns[f"target:{name}"] = values
        tables.append(pa.table(columns))
    return pa.concat_tables(tables, promote_options="default")
