"""Table helpers shared by every reader."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from forecast.inputs.tables import arrow_mask


@given(st.lists(st.booleans(), max_size=70), st.integers(1, 3))
def test_arrow_mask_is_pyarrows_conversion(values, step):
    """Any length (a partial last byte too), any values, a strided view as well as a contiguous array."""
    mask = np.array(values, dtype=bool)[::step]
    assert arrow_mask(mask).equals(pa.array(mask))
