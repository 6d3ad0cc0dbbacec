"""Small models shared by the export and backend tests (imported by test modules, holds no tests)."""
import torch

from ami_world_model.models.config import WorldModelConfig
from ami_world_model.models.world_model import WorldModel


def perturbed_tiny_model(seed: int = 0, **overrides) -> WorldModel:
    """An untrained model with every weight perturbed: the predictor's head starts at zero (an exact copy
    of its input), which would make predictor parity trivially true."""
    torch.manual_seed(seed)
    model = WorldModel(WorldModelConfig.tiny(**overrides)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def assert_same_table(a, b, abs_tol: float = 1e-9, path: str = "") -> None:
    """``a == b`` for nested results, floats within ``abs_tol`` (1e-9: a nanometre for distances).

    Two runs of the same fixed-budget evaluation make the same decisions, but a BLAS may sum in another order
    between calls (buffer alignment), so a float can differ in its last bits; everything else must be equal.
    """
    import math

    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same_table(a[k], b[k], abs_tol, f"{path}.{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_table(x, y, abs_tol, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or abs(a - b) <= abs_tol, f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
