"""Wilson interval against published values (Newcombe 1998, Table I; Brown, Cai & DasGupta 2001)."""
import math

import pytest

from ami_world_model.evaluation.stats import format_rate, success_summary, wilson_interval


@pytest.mark.parametrize("k, n, low, high", [
    (81, 263, 0.2553, 0.3662),  # Newcombe 1998, example 1
    (15, 148, 0.0624, 0.1605),  # Newcombe 1998, example 2
    (0, 20, 0.0, 0.1611),  # Newcombe 1998, example 3
    (1, 29, 0.0061, 0.1718),  # Newcombe 1998, example 4
    (8, 10, 0.4902, 0.9433),
    (10, 10, 0.7225, 1.0),
])
def test_wilson_matches_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=6e-5) and hi == pytest.approx(high, abs=6e-5)


def test_wilson_is_symmetric_and_narrows_with_n():
    lo, hi = wilson_interval(3, 10)
    lo2, hi2 = wilson_interval(7, 10)
    assert lo == pytest.approx(1 - hi2) and hi == pytest.approx(1 - lo2)
    w10 = wilson_interval(8, 10)
    w50 = wilson_interval(40, 50)
    assert w50[1] - w50[0] < w10[1] - w10[0]
    assert w50[0] < 0.8 < w50[1]


@pytest.mark.parametrize("k, n", [(-1, 10), (11, 10), (0, 0), (1.5, 3), (True, 3)])
def test_wilson_rejects_bad_counts(k, n):
    with pytest.raises(ValueError):
        wilson_interval(k, n)


def test_success_summary_and_format():
    s = success_summary([True] * 8 + [False] * 2)
    assert s["n"] == 10 and s["successes"] == 8 and s["rate"] == 0.8
    assert s["ci_low"] == pytest.approx(0.4902, abs=6e-5)
    assert format_rate(s) == "80% [49-94]"
    empty = success_summary([])
    assert empty["n"] == 0 and math.isnan(empty["rate"]) and format_rate(empty) == "-"
