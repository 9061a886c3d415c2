"""Are two result tables the same numbers? The one comparison the conformance kit, the
cross-engine tests and the benchmarks use, so that "equal" means the same everywhere.

Numbers are equal within a relative tolerance (engines sum doubles in different orders);
nulls only equal nulls; booleans and text compare exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

REL_TOL = 1e-9
ABS_TOL = 1e-12


def same_value(got: Any, expected: Any, rel_tol: float = REL_TOL) -> bool:
    """``got`` is ``expected``: null for null, exact for booleans and text, numbers (also
    ``Decimal``) within ``rel_tol``."""
    if got is None or expected is None:
        return got is None and expected is None
    if isinstance(got, bool | str) or isinstance(expected, bool | str):
        return bool(got == expected)
    return math.isclose(float(got), float(expected), rel_tol=rel_tol, abs_tol=ABS_TOL)


def differences(
    got: Mapping[Any, Any],
    expected: Mapping[Any, Any],
    rel_tol: float = REL_TOL,
    reference: str = "expected",
) -> list[str]:
    """Each missing row, extra row and different value of ``got`` (row key → value)
    against ``expected``, sorted; empty when they are the same table."""
    problems = [f"missing row {k}" for k in expected.keys() - got.keys()]
    problems += [f"extra row {k}" for k in got.keys() - expected.keys()]
    for key in expected.keys() & got.keys():
        if not same_value(got[key], expected[key], rel_tol):
            problems.append(f"{key}: {got[key]!r} != {reference} {expected[key]!r}")
    return sorted(problems)
