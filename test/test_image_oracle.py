"""evaluation/image_oracle.py: the oracle planner scored with a goal-image energy."""
import pytest
import torch

from ami_world_model.evaluation.image_oracle import ImageEnergyDynamics, image_features


def test_pixel_energy_is_zero_at_the_goal_and_positive_away(cell):
    cell.reset(seed=100003, task="push")
    dyn = ImageEnergyDynamics(cell, 4, 0.3, image_features("pixels"))
    energy = dyn.distance_energy("push")
    away = float(energy(dyn.root_state(), torch.zeros(2))[0])
    cell.set_state(cell.goal.state)
    at_goal = float(energy(dyn.root_state(), torch.zeros(2))[0])
    assert away > 1e-3 and at_goal < 1e-6


def test_candidate_energies_follow_the_rendered_outcomes(cell):
    """Two candidates with opposite twists end in different places, so their energies differ."""
    cell.reset(seed=100004, task="reach")
    dyn = ImageEnergyDynamics(cell, 4, 0.3, image_features("pixels"))
    energy = dyn.distance_energy("reach")
    root = dyn.root_state().expand(2, 1)
    out = dyn(root, torch.tensor([[0.1, 0.0], [-0.1, 0.0]]))
    e = energy(out, torch.zeros(2))
    assert e.shape == (2,) and abs(float(e[0] - e[1])) > 1e-4


def test_latent_energy_needs_an_encoder():
    with pytest.raises(ValueError):
        image_features("latent")
    with pytest.raises(ValueError):
        image_features("depth")
