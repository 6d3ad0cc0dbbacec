"""Action-conditioned predictor (V-JEPA 2-AC style): next-frame latents from k frames of latents + actions.

Each frame t contributes one action token (a_t, the action applied after frame t), an optional state token
and its N latent tokens. Attention is block-causal over time (frame t sees frames <= t), so one forward
pass gives, at every frame t, a prediction of frame t+1: teacher forcing trains all of them at once and
``forward`` returns the last. The output is a residual on the input latents (predicting "no change" is
the starting point, so the network learns what the action changes).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ami_world_model.config import ActionSpec, StateSpec
from ami_world_model.models.config import PredictorConfig
from ami_world_model.models.layers import Block, init_weights, rescale_residuals


class ACPredictor(nn.Module):
    def __init__(self, cfg: PredictorConfig, latent_dim: int, num_latents: int, action: ActionSpec,
                 state: StateSpec) -> None:
        super().__init__()
        self.cfg = cfg
        self.latent_dim, self.num_latents = latent_dim, num_latents
        self.action_dim, self.state_dim = action.dim, state.dim
        p = cfg.embed_dim
        self.latent_in = nn.Linear(latent_dim, p)
        self.action_in = nn.Linear(action.dim, p)
        self.state_in = nn.Linear(state.dim, p) if state.dim else None
        self.space_pos = nn.Parameter(torch.zeros(1, 1, num_latents, p))
        self.time_pos = nn.Parameter(torch.zeros(1, cfg.max_frames, 1, p))
        self.blocks = nn.ModuleList([Block(p, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(p)
        self.head = nn.Linear(p, latent_dim)
        self.register_buffer("action_mean", torch.tensor(action.mean).float(), persistent=False)
        self.register_buffer("action_std", torch.tensor(action.std).float(), persistent=False)
        self.register_buffer("state_mean", torch.tensor(state.mean).float(), persistent=False)
        self.register_buffer("state_std", torch.tensor(state.std).float(), persistent=False)
        init_weights(self)
        nn.init.trunc_normal_(self.space_pos, std=0.02)
        nn.init.trunc_normal_(self.time_pos, std=0.02)
        rescale_residuals(self.blocks)
        # zero head: an untrained predictor is exactly the copy baseline, training learns the change
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward_all(self, z: Tensor, actions: Tensor, states: Optional[Tensor] = None) -> Tensor:
        """z [B,T,N,D], actions [B,T,A] (physical units), states [B,T,S] -> predictions [B,T,N,D].

        Output t predicts the latents of frame t+1 from frames <= t.
        """
        b, t, n, d = z.shape
        if n != self.num_latents or d != self.latent_dim:
            raise ValueError(f"predictor expects z [B,T,{self.num_latents},{self.latent_dim}], got {list(z.shape)}")
        if actions.shape != (b, t, self.action_dim):
            raise ValueError(f"predictor expects actions [{b},{t},{self.action_dim}], got {list(actions.shape)}")
        if t > self.cfg.max_frames:
            raise ValueError(f"predictor got {t} frames, max_frames is {self.cfg.max_frames}")
        a = self.action_in((actions - self.action_mean) / self.action_std)[:, :, None]  # [B, T, 1, P]
        parts = [a]
        if self.state_in is not None:
            if states is None or states.shape != (b, t, self.state_dim):
                got = None if states is None else list(states.shape)
                raise ValueError(f"predictor expects states [{b},{t},{self.state_dim}], got {got}")
            parts.append(self.state_in((states - self.state_mean) / self.state_std)[:, :, None])
        parts.append(self.latent_in(z) + self.space_pos)  # [B, T, N, P]
        x = torch.cat(parts, dim=2) + self.time_pos[:, :t]  # [B, T, tpf, P]
        tpf = x.shape[2]
        x = x.reshape(b, t * tpf, -1)  # [B, T*tpf, P]
        mask = None
        if t > 1:  # block-causal: a token of frame i attends to every token of frames <= i
            frame = torch.arange(t, device=z.device).repeat_interleave(tpf)
            mask = frame[:, None] >= frame[None, :]
        for blk in self.blocks:
            x = blk(x, mask)
        x = self.norm(x).reshape(b, t, tpf, -1)[:, :, tpf - n:]  # latent tokens only: [B, T, N, P]
        return z + self.head(x)  # residual on the input frame: [B, T, N, D]

    def forward(self, z: Tensor, actions: Tensor, states: Optional[Tensor] = None) -> Tensor:
        """z [B,T,N,D], actions [B,T,A], states [B,T,S] or None -> latents of frame T's successor [B,N,D]."""
        return self.forward_all(z, actions, states)[:, -1]
