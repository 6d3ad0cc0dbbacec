"""One rollout: what training rolls out is exactly what the planner's dynamics (and the node's surprise) step."""
import pytest
import torch
from model_helpers import perturbed_tiny_model

from ami_world_model.config import StateSpec
from ami_world_model.planning import WorldModelState, make_world_model_dynamics
from ami_world_model.training.losses import rollout_predictions


def _reference(model, z, a, s, k):
    """Independent loop over ``model.next`` with explicitly built k-frame windows (no shared code)."""
    frames = list(z[:, :k].unbind(1))
    acts = list(a[:, :k - 1].unbind(1))
    sts = None if s is None else list(s[:, :k].unbind(1))
    outs = []
    for i in range(a.shape[1] - k):
        window = torch.stack(frames[-k:], 1)
        act = torch.stack(acts[len(acts) - (k - 1):] + [a[:, k - 1 + i]], 1) if k > 1 else a[:, k - 1 + i][:, None]
        st = None if sts is None else torch.stack(sts[-k:], 1)
        nxt = model.next(window, act, st)
        outs.append(nxt)
        frames.append(nxt)
        acts.append(a[:, k - 1 + i])
        if sts is not None:
            sts.append(sts[-1])
    return torch.stack(outs, 1)


@pytest.mark.parametrize("k", [1, 2, 3])
@torch.no_grad()
def test_training_rollout_equals_planner_dynamics(k):
    model = perturbed_tiny_model(seed=k, context_frames=k)
    b, h = 3, 4
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(b, k + h, 16, 96, generator=gen)  # a training window of k + H frames
    a = torch.randn(b, k + h, 2, generator=gen) * 0.05
    trained = rollout_predictions(model, z, a, None)  # what the rollout loss compares with z[:, k:]
    assert trained.shape == (b, h, 16, 96)

    dynamics = make_world_model_dynamics(model.next, k)
    state = WorldModelState(z[:, :k], a[:, :k - 1])
    planned = []
    for i in range(h):
        state = dynamics(state, a[:, k - 1 + i])
        planned.append(state.latest)
    planned = torch.stack(planned, 1)
    assert torch.equal(trained, planned)  # bit for bit: one code path

    # and both are the predictor stepped with k frames of context, slid one frame at a time
    assert torch.allclose(trained, _reference(model, z, a, None, k), atol=1e-5)
    # the model's actions matter (else the equalities above would hold for any action bookkeeping)
    assert not torch.allclose(trained, rollout_predictions(model, z, a.flip(1), None), atol=1e-4)


@torch.no_grad()
def test_node_history_state_steps_like_training():
    """The node builds its state with ``from_history`` (batch 1); stepping it gives the training rollout."""
    k, h = 2, 3
    model = perturbed_tiny_model(seed=5, context_frames=k)
    z = torch.randn(1, k + h, 16, 96)
    a = torch.randn(1, k + h, 2) * 0.05
    state = WorldModelState.from_history(z[0, :k], a[0, :k - 1], k)
    dynamics = make_world_model_dynamics(model.next, k)
    for i in range(h):
        state = dynamics(state, a[:, k - 1 + i])
    assert torch.equal(state.latest, rollout_predictions(model, z, a, None)[:, -1])


@torch.no_grad()
def test_rollout_with_states_holds_the_newest_state():
    k = 2
    model = perturbed_tiny_model(seed=1, context_frames=k,
                                 state=StateSpec(names=["j1", "j2"], mean=[0, 0], std=[1, 1]))
    z = torch.randn(2, k + 3, 16, 96)
    a = torch.randn(2, k + 3, 2) * 0.05
    s = torch.randn(2, k + 3, 2)
    trained = rollout_predictions(model, z, a, s)
    assert torch.allclose(trained, _reference(model, z, a, s, k), atol=1e-5)
    state = WorldModelState(z[:, :k], a[:, :k - 1], s[:, :k])
    for i in range(3):
        state = make_world_model_dynamics(model.next, k)(state, a[:, k - 1 + i])
    assert torch.equal(state.latest, trained[:, -1])


def test_rollout_needs_past_actions_for_k_above_one():
    model = perturbed_tiny_model(context_frames=2)
    with pytest.raises(ValueError, match="past_actions"):
        model.rollout(torch.randn(1, 2, 16, 96), torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="T >= context_frames"):
        model.rollout(torch.randn(1, 1, 16, 96), torch.zeros(1, 3, 2), past_actions=torch.zeros(1, 1, 2))
