"""Headline table and diagnostic summary of closed-loop records (Wilson intervals, failure reasons)."""
import pytest

from ami_world_model.evaluation.failure import NEVER_TOUCHED, OUT_OF_TICKS, STOPPED_UNSURE, SUCCESS, WRONG_WAY
from ami_world_model.evaluation.report import (
    EpisodeRecord,
    diagnostic_summary,
    format_headline_table,
    trace_from_record,
)
from ami_world_model.evaluation.stats import success_summary


def _rec(policy, success, dists, stop="max_steps", task="push"):
    return EpisodeRecord(task=task, policy=policy, seed=0, success=success, final_distance_m=dists[-1],
                         initial_distance_m=0.06, steps=len(dists), distances_m=list(dists), stop_reason=stop)


def test_diagnostic_summary_counts_reasons_and_intervals():
    recs = [_rec("planner", True, [0.04, 0.02]), _rec("planner", False, [0.05, 0.04], "unsure_no_progress"),
            _rec("planner", False, [0.07, 0.08]), _rec("planner", False, [0.06, 0.06]),
            _rec("random", False, [0.06, 0.06])]
    block = [[0.2, 0.0], [0.2, 0.0], [0.2, 0.0]]
    traces = [trace_from_record(r) for r in recs[:3]] + [trace_from_record(recs[3], block, [0.26, 0.0], False)]
    s = diagnostic_summary(recs, traces)
    assert s["planner"]["n"] == 4 and s["planner"]["successes"] == 1 and s["random"]["n"] == 1
    f = s["failures"]
    assert (f[SUCCESS], f[STOPPED_UNSURE], f[WRONG_WAY], f[NEVER_TOUCHED]) == (1, 1, 1, 1)
    # without block positions a push episode that did not get closer is judged on its stop only
    assert diagnostic_summary(recs)["failures"][OUT_OF_TICKS] == 1
    with pytest.raises(ValueError):
        diagnostic_summary(recs, traces[:2])


def test_trace_from_record_starts_at_the_initial_distance():
    t = trace_from_record(_rec("planner", False, [0.05, 0.04], ""))
    assert t.distances_m == [0.06, 0.05, 0.04] and t.stop_reason == "max_steps"


def test_headline_table_rows():
    row = {"task": "push", "mode": "fixed", "planner": success_summary([True] * 8 + [False] * 2),
           "random": success_summary([False] * 10), "oracle": success_summary([True] * 10),
           "energy_spearman": 0.45, "failures": {SUCCESS: 8, STOPPED_UNSURE: 2, WRONG_WAY: 0},
           "tick_p95_ms": 91.2}
    lines = format_headline_table([row, {"task": "reach", "planner": success_summary([])}]).splitlines()
    assert len(lines) == 4
    assert "80% [49-94]" in lines[2] and "0% [0-28]" in lines[2] and "100% [72-100]" in lines[2]
    assert "0.45" in lines[2] and "91 ms" in lines[2] and "stopped_unsure 2" in lines[2]
    assert "wrong_way" not in lines[2]  # zero counts are left out
    assert lines[3].split()[:3] == ["reach", "-", "-"]
