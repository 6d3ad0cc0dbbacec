"""WorldModel: the encoder + action-conditioned predictor; the only API the planner, backends and node call."""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from ami_world_model.models.config import WorldModelConfig
from ami_world_model.models.encoder import Encoder
from ami_world_model.models.pose_dynamics import PoseDynamics
from ami_world_model.models.predictor import ACPredictor
from ami_world_model.models.readout import Readout
from ami_world_model.models.rollout import WorldModelState, rollout


class WorldModel(nn.Module):
    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.encoder, config.image)
        self.predictor = ACPredictor(config.predictor, config.latent_dim, config.num_latents, config.action,
                                     config.state)
        # Only a model trained with poses has a read-out (its tensors are then part of the checkpoint).
        self.readout: Optional[Readout] = (Readout(config.readout, config.num_latents, config.latent_dim,
                                                   config.encoder.latent_grid(config.image))
                                           if config.readout.dim else None)
        # Read-out-space dynamics (models/pose_dynamics.py): only with a read-out and a configured body frame.
        self.pose_dynamics: Optional[PoseDynamics] = (
            PoseDynamics(config.pose_dynamics, config.readout.objects(), config.state.dim, config.action.dim)
            if config.pose_dynamics.enabled and config.readout.dim else None)

    @property
    def context_frames(self) -> int:
        return self.config.context_frames

    def encode(self, images: Tensor) -> Tensor:
        """images [B,3,H,W] float32 in [0,1] -> latents [B,N,D]."""
        return self.encoder(images)

    def read_out(self, z: Tensor) -> Tensor:
        """latents [B,N,D] -> positions [B,P] in metres; ValueError when the model has no read-out."""
        if self.readout is None:
            raise ValueError("this world model has no read-out head (trained without --pose-topic)")
        return self.readout(z)

    def next(self, z: Tensor, actions: Tensor, states: Optional[Tensor] = None) -> Tensor:
        """z [B,T,N,D], actions [B,T,A], states [B,T,S] or None -> next latents [B,N,D]."""
        return self.predictor(z, actions, states)

    def rollout(self, z: Tensor, actions: Tensor, states: Optional[Tensor] = None,
                past_actions: Optional[Tensor] = None) -> Tensor:
        """Autoregressive rollout through ``models.rollout`` (the planner's dynamics step the same way).

        Args:
            z: context latents [B,T,N,D], T >= k; the last k frames are the context (oldest first).
            actions: [B,H,A]; actions[:, 0] is applied after the last context frame.
            states: [B,T,S] context states when the model uses them (the newest is held over the rollout,
                since the model does not predict states).
            past_actions: [B,>=k-1,A], the actions that followed the older context frames; needed when k > 1.
        Returns:
            predicted latents [B,H,N,D] of the H frames that follow.
        """
        k = self.config.context_frames
        if z.dim() != 4 or z.shape[1] < k:
            raise ValueError(f"rollout needs z [B,T,N,D] with T >= context_frames = {k}, got {list(z.shape)}")
        if k == 1:
            past = actions[:, :0]  # [B, 0, A]
        elif past_actions is None or past_actions.shape[1] < k - 1:
            got = None if past_actions is None else list(past_actions.shape)
            raise ValueError(f"rollout with context_frames = {k} needs past_actions [B,{k - 1},A], got {got}")
        else:
            past = past_actions[:, -(k - 1):]  # [B, k-1, A]
        state = WorldModelState(z[:, -k:], past, None if states is None else states[:, -k:])
        return rollout(self.next, state, actions)  # [B, H, N, D]
