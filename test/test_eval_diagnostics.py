"""The diagnostics bundle: parts run on a checkpoint, bad requests are clear errors."""
import json

import pytest
from model_helpers import perturbed_tiny_model

from ami_world_model.evaluation.diagnostics import main, run_diagnostics
from ami_world_model.models.checkpoint import save_world_model


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return str(save_world_model(perturbed_tiny_model(2), tmp_path_factory.mktemp("diag") / "wm"))


def test_oracle_and_energy_parts(tiny_checkpoint):
    out = run_diagnostics(tiny_checkpoint, tasks=("reach",), parts=("oracle", "energy"), energy_seeds=(5,),
                          oracle_seeds=(100_000,), planner={"num_samples": 8, "iterations": 1, "top_k": 4},
                          max_steps=12)
    oracle = out["oracle"]
    assert oracle["planner"]["num_samples"] == 8 and oracle["action_dt_s"] > 0
    assert oracle["reach"]["success_n"] == 1 and oracle["reach"]["plans"] >= 1
    assert out["energy"]["reach"]["stride_1"]["episodes"] == 1
    assert out["oracle_wall_s"] > 0 and "candidates" not in out


def test_cli_rejects_unknown_parts(tiny_checkpoint, capsys):
    assert main(["--checkpoint", tiny_checkpoint, "--parts", "oracle,magic"]) == 2
    assert "magic" in capsys.readouterr().err


def test_cli_writes_json(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "d.json"
    assert main(["--checkpoint", tiny_checkpoint, "--task", "reach", "--parts", "energy", "--energy-episodes", "1",
                 "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["energy"]["reach"]["seeds"] == [300_000]
