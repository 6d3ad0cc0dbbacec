"""Budget auto-sizing: pure given the timing callable (fake rollouts and a fake clock, no wall time)."""
import pytest
import torch

from ami_world_model.planning.budget import choose_budget, make_planner_rollout, make_rollout_timer


def linear_cost(per_sample_s, fixed_s=0.001):
    return lambda s: fixed_s + per_sample_s * s


def test_fast_rollout_keeps_the_configured_maximum():
    c = choose_budget(linear_cost(1e-5), deadline_s=0.06, max_samples=64, max_iterations=4)
    assert (c.num_samples, c.iterations, c.fits, c.reduced) == (64, 4, True, False)
    assert c.tick_s == pytest.approx(4 * (0.001 + 64e-5))


def test_slower_rollout_gets_fewer_samples_and_still_fits():
    fast = choose_budget(linear_cost(1e-4), deadline_s=0.06, max_samples=64, max_iterations=4)
    slow = choose_budget(linear_cost(2e-4), deadline_s=0.06, max_samples=64, max_iterations=4)
    slower = choose_budget(linear_cost(4e-4), deadline_s=0.06, max_samples=64, max_iterations=4)
    assert fast.num_samples == 64
    assert 8 <= slower.num_samples < slow.num_samples < fast.num_samples
    for c in (fast, slow, slower):
        assert c.iterations == 4 and c.fits and c.tick_s <= 0.9 * 0.06
    # the largest that fits: one more sample would not
    s = slow.num_samples
    assert 4 * (0.001 + 2e-4 * (s + 1)) > 0.9 * 0.06


def test_very_slow_rollout_cuts_iterations_after_samples():
    c = choose_budget(linear_cost(1e-3), deadline_s=0.06, max_samples=64, max_iterations=4, min_samples=16)
    # 16 samples cost 17 ms: 3 iterations fit in 54 ms
    assert (c.num_samples, c.iterations, c.fits, c.reduced) == (16, 3, True, True)
    hopeless = choose_budget(linear_cost(1e-2), deadline_s=0.06, max_samples=64, max_iterations=4)
    assert (hopeless.num_samples, hopeless.iterations, hopeless.fits) == (8, 1, False)


def test_overhead_is_taken_off_the_deadline():
    free = choose_budget(linear_cost(1.5e-4), deadline_s=0.06, max_samples=64, max_iterations=4)
    busy = choose_budget(linear_cost(1.5e-4), deadline_s=0.06, max_samples=64, max_iterations=4, overhead_s=0.02)
    assert free.num_samples == 64 and busy.num_samples < 64 and busy.tick_s <= 0.054 + 1e-12


def test_deterministic_and_calls_each_size_once():
    calls = []

    def cost(s):
        calls.append(s)
        return 1e-3 + 3e-4 * s

    a = choose_budget(cost, 0.06, 128, 4)
    assert len(calls) == len(set(calls)) and len(calls) <= 9
    assert choose_budget(cost, 0.06, 128, 4) == a


@pytest.mark.parametrize("kw", [dict(deadline_s=0.0), dict(deadline_s=float("nan")), dict(min_samples=1),
                                dict(min_samples=100), dict(headroom=0.0), dict(overhead_s=-1.0)])
def test_bad_arguments_are_clear_errors(kw):
    args = dict(rollout_time=linear_cost(1e-4), deadline_s=0.06, max_samples=64, max_iterations=4)
    args.update(kw)
    with pytest.raises(ValueError):
        choose_budget(**args)
    with pytest.raises(ValueError):
        choose_budget(lambda s: float("inf"), 0.06, 64, 4)


def test_rollout_timer_with_a_fake_clock_feeds_the_choice():
    now = [0.0]

    def clock():
        return now[0]

    def make_rollout(per_sample_s):
        def rollout(s):
            now[0] += 1e-3 + per_sample_s * s  # the fake clock advances by what the rollout "costs"
        return rollout

    fast = make_rollout_timer(make_rollout(1e-4), clock=clock)
    slow = make_rollout_timer(make_rollout(5e-4), clock=clock)
    assert fast(10) == pytest.approx(2e-3)
    a = choose_budget(fast, 0.06, 64, 4)
    b = choose_budget(slow, 0.06, 64, 4)
    assert b.num_samples < a.num_samples


def test_planner_rollout_runs_the_dynamics_over_the_horizon():
    steps = []

    def dynamics(state, a):
        steps.append(state.shape[0])
        return state + a.sum(dim=1, keepdim=True)

    rollout = make_planner_rollout(dynamics, torch.zeros(1, 3), torch.ones(3), horizon_steps=3, action_dim=2)
    e = rollout(5)
    assert steps == [5, 5, 5] and e.shape == (5,) and torch.allclose(e, torch.ones(5))
