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
