"""World model shapes, dtypes, block-causality, rollout consistency and config validation."""
import pytest
import torch

from ami_world_model.config import ConfigError, StateSpec
from ami_world_model.models.config import EncoderConfig, PredictorConfig, WorldModelConfig
from ami_world_model.models.world_model import WorldModel


def _random_head(m):
    # the predictor head starts at zero (an untrained model is the copy baseline); give it weights so the
    # tests can see what its inputs do
    with torch.no_grad():
        m.predictor.head.weight.normal_(0, 0.05)
    return m


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return _random_head(WorldModel(WorldModelConfig.tiny())).eval()


def test_encoder_shapes_and_dtype(model):
    cfg = model.config
    z = model.encode(torch.rand(3, 3, 64, 64))
    assert z.shape == (3, cfg.num_latents, cfg.latent_dim) == (3, 16, 96)
    assert z.dtype == torch.float32 and torch.isfinite(z).all()
    patches = model.encoder.forward_patches(torch.rand(2, 3, 64, 64))
    assert patches.shape == (2, 64, 96)
    keep = torch.tensor([[0, 5, 9], [1, 2, 63]])
    assert model.encoder.forward_patches(torch.rand(2, 3, 64, 64), keep).shape == (2, 3, 96)


def test_encoder_rejects_wrong_image_size(model):
    with pytest.raises(ValueError, match="64,64"):
        model.encode(torch.rand(1, 3, 32, 32))


def test_encoder_normalises_inside(model):
    # the same image given in [0, 1] twice gives the same latents; a different image differs
    img = torch.rand(1, 3, 64, 64)
    assert torch.allclose(model.encode(img), model.encode(img.clone()))
    assert not torch.allclose(model.encode(img), model.encode(1 - img))


def test_untrained_predictor_is_copy_baseline():
    m = WorldModel(WorldModelConfig.tiny()).eval()
    z = torch.randn(3, 1, 16, 96)
    assert torch.equal(m.next(z, torch.randn(3, 1, 2)), z[:, -1])


def test_predictor_shapes_and_residual(model):
    z = torch.randn(5, 1, 16, 96)
    a = torch.zeros(5, 1, 2)
    out = model.next(z, a)
    assert out.shape == (5, 16, 96) and out.dtype == torch.float32
    with pytest.raises(ValueError, match="actions"):
        model.next(z, torch.zeros(5, 1, 3))
    with pytest.raises(ValueError, match="z"):
        model.next(torch.randn(5, 1, 8, 96), a)


def test_predictor_action_normalisation_uses_spec():
    # Two models with identical weights whose ActionSpecs differ only in mean/std: feeding each an action
    # that normalises to the same value gives the same output.
    torch.manual_seed(0)
    cfg1 = WorldModelConfig.tiny()
    cfg2 = WorldModelConfig.tiny()
    cfg2.action.mean, cfg2.action.std = [0.01, -0.02], [0.1, 0.02]
    m1, m2 = _random_head(WorldModel(cfg1)), WorldModel(cfg2)
    m2.load_state_dict(m1.state_dict())
    z = torch.randn(2, 1, 16, 96)
    a1 = torch.tensor([[[0.05, -0.05]], [[0.0, 0.1]]])
    norm = (a1 - torch.tensor(cfg1.action.mean)) / torch.tensor(cfg1.action.std)
    a2 = norm * torch.tensor(cfg2.action.std) + torch.tensor(cfg2.action.mean)
    assert torch.allclose(m1.next(z, a1), m2.next(z, a2), atol=1e-5)
    assert not torch.allclose(m1.next(z, a1), m1.next(z, a2), atol=1e-3)


def test_block_causal_over_time():
    torch.manual_seed(0)
    m = _random_head(WorldModel(WorldModelConfig.tiny(context_frames=3))).eval()
    z = torch.randn(2, 3, 16, 96)
    a = torch.randn(2, 3, 2) * 0.05
    full = m.predictor.forward_all(z, a)
    z2 = z.clone()
    z2[:, 2] += 1.0  # change the last frame only
    full2 = m.predictor.forward_all(z2, a)
    # earlier frames' predictions cannot see the change; the last one does
    assert torch.allclose(full[:, :2], full2[:, :2], atol=1e-6)
    assert not torch.allclose(full[:, 2], full2[:, 2], atol=1e-3)
    # and the first prediction equals a one-frame call (position 0 sees only frame 0)
    assert torch.allclose(full[:, 0], m.next(z[:, :1], a[:, :1]), atol=1e-5)


def test_rollout_equals_manual_loop(model):
    z = torch.randn(2, 1, 16, 96)
    a = torch.randn(2, 4, 2) * 0.05
    out = model.rollout(z, a)
    assert out.shape == (2, 4, 16, 96)
    cur = z
    for i in range(4):
        nxt = model.next(cur, a[:, i:i + 1])
        assert torch.allclose(out[:, i], nxt, atol=1e-5)
        cur = nxt[:, None]


def test_rollout_with_two_context_frames_and_past_actions():
    torch.manual_seed(0)
    m = _random_head(WorldModel(WorldModelConfig.tiny(context_frames=2))).eval()
    z = torch.randn(1, 2, 16, 96)
    a = torch.randn(1, 3, 2) * 0.05
    past = torch.randn(1, 1, 2) * 0.05
    out = m.rollout(z, a, past_actions=past)
    first = m.next(z, torch.cat([past, a[:, :1]], 1))
    assert torch.allclose(out[:, 0], first, atol=1e-5)
    second = m.next(torch.stack([z[:, 1], first], 1), a[:, :2])
    assert torch.allclose(out[:, 1], second, atol=1e-5)


def test_states_input_when_state_spec_present():
    cfg = WorldModelConfig.tiny(state=StateSpec(names=["j1", "j2", "j3"], mean=[0, 0, 0], std=[1, 1, 1]))
    m = _random_head(WorldModel(cfg)).eval()
    z, a, s = torch.randn(2, 1, 16, 96), torch.zeros(2, 1, 2), torch.randn(2, 1, 3)
    assert m.next(z, a, s).shape == (2, 16, 96)
    assert not torch.allclose(m.next(z, a, s), m.next(z, a, s + 1))
    with pytest.raises(ValueError, match="states"):
        m.next(z, a)
    assert m.rollout(z, torch.zeros(2, 3, 2), s).shape == (2, 3, 16, 96)


def test_config_validation():
    with pytest.raises(ConfigError, match="patch_size"):
        WorldModelConfig.tiny(encoder=EncoderConfig(patch_size=7))
    with pytest.raises(ConfigError, match="context_frames"):
        WorldModelConfig.tiny(context_frames=9)
    with pytest.raises(ConfigError, match="num_heads"):
        PredictorConfig(embed_dim=30, num_heads=4)


def test_vit_s16_224_preset_builds():
    cfg = WorldModelConfig.vit_s16_224()
    assert cfg.num_latents == 49 and cfg.latent_dim == 384
    assert cfg.encoder.depth == 12 and cfg.image.height == 224
