"""A run's values as {(period, region or None): value}, and their comparison with an
independent expectation (equal keys; null where expected; 1e-9 relative otherwise)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

Values = dict[tuple[dt.date, Any], Any]


def got(result: Any, kpi: str, dimension: str = "region") -> Values:
    return {
        (row.period, dict(row.dimensions).get(dimension)): row.value
        for row in result.rows
        if row.kpi == kpi
    }


def assert_same(actual: Values, wanted: Values, kpi: str) -> None:
    assert actual.keys() == wanted.keys(), kpi
    for key, value in wanted.items():
        if value is None:
            assert actual[key] is None, (kpi, key, actual[key])
        else:
            assert actual[key] is not None and math.isclose(actual[key], value, rel_tol=1e-9), (
                kpi,
                key,
                actual[key],
                value,
            )
