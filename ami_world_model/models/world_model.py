"""WorldModel: the encoder + action-conditioned predictor; the only API the planner, backends and node call."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ami_world_model.models.config import WorldModelConfig
from ami_world_model.models.encoder import Encoder
from ami_world_model.models.predictor import ACPredictor


class WorldModel(nn.Module):
    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.encoder, config.image)
        self.predictor = ACPredictor(config.predictor, config.latent_dim, config.num_latents, config.action,
                                     config.state)

    @property
    def context_frames(self) -> int:
        return self.config.context_frames

    def encode(self, images: Tensor) -> Tensor:
        """images [B,3,H,W] float32 in [0,1] -> latents [B,N,D]."""
        return self.encoder(images)

    def next(self, z: Tensor, actions: Tensor, states: Optional[Tensor] = None) -> Tensor:
        """z [B,T,N,D], actions [B,T,A], states [B,T,S] or None -> next latents [B,N,D]."""
        return self.predictor(z, actions, states)

    def rollout(self, z: Tensor, actions: Tensor, states: Optional[Tensor] = None,
                past_actions: Optional[Tensor] = None) -> Tensor:
        """Autoregressive rollout.

        Args:
            z: context latents [B,k,N,D] (the last k observed frames, oldest first).
            actions: [B,H,A]; actions[:, 0] is applied after the last context frame.
            states: [B,k,S] context states when the model uses them (held constant over the rollout, since
                the model does not predict states).
            past_actions: [B,k-1,A], the actions that followed the older context frames (training knows
                them); when None they are taken equal to actions[:, 0] (a planner does not track them).
        Returns:
            predicted latents [B,H,N,D] of the H frames that follow.
        """
        k = self.config.context_frames
        b, h = actions.shape[:2]
        window = z[:, -k:]  # [B, k', N, D]
        # one action slot per window frame; the newest slot is overwritten by the planned action each step
        act = actions[:, :1].expand(b, window.shape[1], -1)  # [B, k', A]
        if past_actions is not None and window.shape[1] > 1:
            act = torch.cat([past_actions[:, -(window.shape[1] - 1):], actions[:, :1]], dim=1)
        st = None if states is None else states[:, -k:]
        outs = []
        for i in range(h):
            act = torch.cat([act[:, :-1], actions[:, i:i + 1]], dim=1)  # newest slot = a_i
            nxt = self.predictor(window, act, st)  # [B, N, D]
            outs.append(nxt)
            window = torch.cat([window, nxt[:, None]], dim=1)[:, -k:]
            act = torch.cat([act, actions[:, i:i + 1]], dim=1)[:, -k:]  # placeholder slot for the new frame
            if st is not None:
                st = torch.cat([st, st[:, -1:]], dim=1)[:, -k:]
        return torch.stack(outs, dim=1)  # [B, H, N, D]
