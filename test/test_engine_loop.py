"""evaluation/engine_loop.py: the ROS-free closed loop (PlanningEngine driving the SimCell at a fixed budget)."""
import json

import pytest
from model_helpers import assert_same_table, perturbed_tiny_model

from ami_world_model.evaluation.engine_loop import evaluate, main
from ami_world_model.evaluation.failure import REASONS
from ami_world_model.models.checkpoint import save_world_model

SMALL = {"planner.num_samples": 8, "planner.iterations": 2, "planner.top_k": 4}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return save_world_model(perturbed_tiny_model(3), tmp_path_factory.mktemp("loop") / "wm")


def test_fixed_budget_is_deterministic(tiny_checkpoint):
    runs = [evaluate(tiny_checkpoint, ["push"], [100000, 100001], params=SMALL, max_steps=6) for _ in range(2)]
    a, b = runs
    assert_same_table([{k: v for k, v in e.items() if "ms" not in k} for e in a["push"]["episodes"]],
                      [{k: v for k, v in e.items() if "ms" not in k} for e in b["push"]["episodes"]])
    s = a["push"]
    assert s["success_n"] == 2 and s["seeds"] == [100000, 100001]
    assert 0.0 <= s["success_ci_low"] <= s["success_rate"] <= s["success_ci_high"] <= 1.0
    assert sum(s["failures"].values()) == 2 and set(s["failures"]) == set(REASONS)
    for ep in s["episodes"]:
        assert ep["steps"] <= 6
        assert ep["stop_reason"] == "max_steps" or ep["steps"] < 6
    assert s["tick_ms_p95"] > 0


def test_the_arm_moves_under_the_planner(tiny_checkpoint):
    """Commands reach the cell: the tool's distance to its goal changes over a reach episode."""
    from ami_world_model.evaluation.engine_loop import EngineLoop

    loop = EngineLoop(tiny_checkpoint, params=SMALL, max_steps=4)
    try:
        ep = loop.run_episode("reach", 100002)
    finally:
        loop.close()
    assert len(ep.distances_m) == ep.steps + 1
    assert max(ep.distances_m) - min(ep.distances_m) > 1e-4


def test_cli_writes_json(tiny_checkpoint, tmp_path):
    out = tmp_path / "loop.json"
    rc = main(["--checkpoint", str(tiny_checkpoint), "--task", "reach", "--episodes", "1", "--max-steps", "3",
               "--out", str(out), *[x for k, v in SMALL.items() for x in ("--param", f"{k}:={v}")]])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["reach"]["success_n"] == 1 and data["reach"]["episodes"][0]["steps"] <= 3
