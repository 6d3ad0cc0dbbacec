"""Failure reasons on synthetic episode traces."""
import numpy as np
import pytest

from ami_world_model.evaluation.failure import (
    ERROR,
    FALSE_GOAL,
    NEVER_TOUCHED,
    OUT_OF_TICKS,
    REASONS,
    STOPPED_UNSURE,
    SUCCESS,
    WRONG_WAY,
    EpisodeTrace,
    FailureThresholds,
    classify_failure,
    count_reasons,
)

GOAL = [0.26, 0.0]  # the block starts at (0.20, 0) and should go 6 cm along +x


def _push(block_end, stop="max_steps", success=False, **kw):
    start, end = np.array([0.20, 0.0]), np.asarray(block_end, dtype=float)
    block = np.linspace(start, end, 11)  # [11, 2]
    dist = np.linalg.norm(block - np.asarray(GOAL), axis=1)
    return EpisodeTrace("push", success, dist.tolist(), stop, block.tolist(), GOAL, **kw)


def test_success_wins():
    assert classify_failure(_push([0.255, 0.0], success=True)) == SUCCESS


def test_never_touched_by_contact_flag_distance_or_stillness():
    assert classify_failure(_push([0.20, 0.0], touched=False)) == NEVER_TOUCHED
    assert classify_failure(_push([0.20, 0.0], min_tool_block_m=0.08)) == NEVER_TOUCHED
    assert classify_failure(_push([0.20, 0.0])) == NEVER_TOUCHED  # nothing about the tool: a still block
    # touched but too lightly to move it: not "never touched"; the stop decides
    assert classify_failure(_push([0.20, 0.0], min_tool_block_m=0.034)) == OUT_OF_TICKS
    assert classify_failure(_push([0.20, 0.0], touched=True, stop="unsure_no_progress")) == STOPPED_UNSURE


@pytest.mark.parametrize("end", [[0.17, 0.0], [0.20, 0.04], [0.21, -0.03]])
def test_pushed_away_from_the_goal_direction(end):
    assert classify_failure(_push(end, touched=True)) == WRONG_WAY


def test_pushed_roughly_the_right_way_is_not_wrong_way():
    assert classify_failure(_push([0.23, 0.01], touched=True)) == OUT_OF_TICKS
    assert classify_failure(_push([0.23, 0.01], stop="unsure_surprise")) == STOPPED_UNSURE
    # the angle threshold is a knob: 15 deg off-axis is wrong with a 10 deg tolerance
    th = FailureThresholds(wrong_way_deg=10.0)
    assert classify_failure(_push([0.23, 0.008], touched=True), th) == WRONG_WAY


def test_stops_map_to_their_reasons():
    assert classify_failure(_push([0.23, 0.0], stop="goal_reached")) == FALSE_GOAL
    assert classify_failure(_push([0.23, 0.0], stop="model_error")) == ERROR
    assert classify_failure(_push([0.23, 0.0], stop="")) == OUT_OF_TICKS


def test_reach_uses_distances_only():
    closer = EpisodeTrace("reach", False, [0.10, 0.06, 0.04], "max_steps")
    away = EpisodeTrace("reach", False, [0.10, 0.12, 0.15], "unsure_no_progress")
    stuck = EpisodeTrace("reach", False, [0.10, 0.09, 0.09], "unsure_no_progress")
    assert classify_failure(closer) == OUT_OF_TICKS
    assert classify_failure(away) == WRONG_WAY
    assert classify_failure(stuck) == STOPPED_UNSURE
    assert classify_failure(EpisodeTrace("reach", True, [0.1, 0.01])) == SUCCESS


def test_bad_traces_are_clear_errors():
    with pytest.raises(ValueError):
        classify_failure(EpisodeTrace("stack", False, [0.1]))
    with pytest.raises(ValueError):
        classify_failure(EpisodeTrace("reach", False, []))
    with pytest.raises(ValueError):
        classify_failure(EpisodeTrace("reach", False, [0.1, float("nan")]))


def test_count_reasons_has_every_column():
    counts = count_reasons([SUCCESS, SUCCESS, WRONG_WAY])
    assert list(counts) == list(REASONS)
    assert counts[SUCCESS] == 2 and counts[WRONG_WAY] == 1 and counts[NEVER_TOUCHED] == 0
    with pytest.raises(ValueError):
        count_reasons(["bored"])
