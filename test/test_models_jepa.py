"""JEPA parts: multi-block masking (coverage, reproducibility), EMA update and schedule, collapse monitor."""
import pytest
import torch

from ami_world_model.config import ImageSpec
from ami_world_model.models.config import EncoderConfig, JepaConfig
from ami_world_model.models.encoder import Encoder
from ami_world_model.models.jepa import JEPA, MaskConfig, collapse_stats, ema_momentum, multiblock_masks


def _masks(seed, batch=6, grid=(8, 8), cfg=MaskConfig()):
    return multiblock_masks(batch, grid, torch.Generator().manual_seed(seed), cfg)


@pytest.mark.parametrize("grid", [(8, 8), (14, 14), (6, 10)])
def test_masks_cover_what_they_say(grid):
    cfg = MaskConfig()
    ctx, tgt = _masks(0, 6, grid, cfg)
    g = grid[0] * grid[1]
    assert ctx.dtype == tgt.dtype == torch.long
    assert ctx.shape[0] == tgt.shape[0] == 6 and ctx.shape[1] >= cfg.min_context
    assert int(ctx.min()) >= 0 and int(ctx.max()) < g and int(tgt.min()) >= 0 and int(tgt.max()) < g
    kt = tgt.shape[1] // cfg.num_targets
    assert kt * cfg.num_targets == tgt.shape[1]
    for b in range(6):
        # nothing the predictor must predict is visible to the context encoder
        assert not set(ctx[b].tolist()) & set(tgt[b].tolist())
        assert len(set(ctx[b].tolist())) == ctx.shape[1]  # no duplicate context tokens
        for m in range(cfg.num_targets):
            block = tgt[b, m * kt:(m + 1) * kt]
            rows, cols = block // grid[1], block % grid[1]
            h, w = int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1
            assert h * w == kt, "each target is one full rectangle"
            frac = kt / g
            lo, hi = cfg.target_scale
            assert lo * 0.4 <= frac <= hi * 2.0, f"block {h}x{w} is {frac:.2f} of the grid"


def test_masks_reproducible_and_seed_dependent():
    a, b = _masks(3), _masks(3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = _masks(4)
    assert not (a[0].shape == c[0].shape and torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]))


def test_masks_vary_across_batch():
    ctx, tgt = _masks(0, batch=8)
    assert len({tuple(t.tolist()) for t in tgt}) > 1


def test_ema_update_exact_and_schedule():
    torch.manual_seed(0)
    jepa = JEPA(Encoder(EncoderConfig(depth=1), ImageSpec()), JepaConfig(depth=1))
    with torch.no_grad():
        for p in jepa.encoder.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in jepa.target.parameters()]
    online = [p.clone() for p in jepa.encoder.parameters()]
    jepa.update_target(0.9)
    for t0, o, t1 in zip(before, online, jepa.target.parameters()):
        assert torch.allclose(t1, 0.9 * t0 + 0.1 * o, atol=1e-6)
    assert not any(p.requires_grad for p in jepa.target.parameters())
    # schedule: 0.996 at the start, 1.0 at the end, linear and monotone in between
    ms = [ema_momentum(s, 100) for s in range(101)]
    assert ms[0] == pytest.approx(0.996) and ms[-1] == pytest.approx(1.0) and ms[50] == pytest.approx(0.998)
    assert all(b >= a for a, b in zip(ms, ms[1:]))
    # momentum 1 freezes the target
    frozen = [p.clone() for p in jepa.target.parameters()]
    jepa.update_target(1.0)
    assert all(torch.equal(a, b) for a, b in zip(frozen, jepa.target.parameters()))


def test_jepa_loss_shapes_and_gradients():
    torch.manual_seed(0)
    jepa = JEPA(Encoder(EncoderConfig(depth=1), ImageSpec()), JepaConfig(depth=1))
    ctx, tgt = _masks(0, batch=3)
    loss, h = jepa.loss(torch.rand(3, 3, 64, 64), ctx, tgt)
    assert loss.ndim == 0 and h.shape == (3, 64, 96)
    loss.backward()
    assert jepa.encoder.patch_embed.weight.grad is not None
    assert all(p.grad is None for p in jepa.target.parameters())


def test_collapse_stats_detects_collapse():
    healthy = collapse_stats(torch.randn(2000, 96))
    assert healthy["effective_rank"] > 80 and healthy["std_min"] > 0.8
    line = torch.randn(2000, 1) * torch.randn(1, 96)  # everything on one direction
    assert collapse_stats(line)["effective_rank"] < 1.5
    const = torch.ones(2000, 96) + 1e-6 * torch.randn(2000, 96)
    assert collapse_stats(const)["std_mean"] < 1e-5
