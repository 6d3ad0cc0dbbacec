"""Losses and error metrics of the action-conditioned predictor (all L1 on latents, as V-JEPA 2-AC)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ami_world_model.models.world_model import WorldModel


def teacher_forcing_inputs(z: Tensor, a: Tensor, s: Optional[Tensor], k: int
                           ) -> Tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
    """Windows z [B,L,N,D], a [B,L,A] -> every ground-truth k-frame context and its next frame.

    Returns contexts [B*(L-k),k,N,D], actions [B*(L-k),k,A], states or None, targets [B*(L-k),N,D].
    """
    b, length = z.shape[:2]
    h = length - k
    ctx = torch.stack([z[:, j:j + k] for j in range(h)], dim=1).flatten(0, 1)  # [B*h, k, N, D]
    act = torch.stack([a[:, j:j + k] for j in range(h)], dim=1).flatten(0, 1)  # [B*h, k, A]
    st = None if s is None else torch.stack([s[:, j:j + k] for j in range(h)], dim=1).flatten(0, 1)
    tgt = z[:, k:].flatten(0, 1)  # [B*h, N, D]
    return ctx, act, st, tgt


def elementwise(pred: Tensor, target: Tensor, beta: float) -> Tensor:
    """L1 (beta = 0) or smooth-L1 with quadratic zone |e| < beta."""
    if beta <= 0:
        return (pred - target).abs()
    return F.smooth_l1_loss(pred, target, beta=beta, reduction="none")


def rollout_predictions(model: WorldModel, z: Tensor, a: Tensor, s: Optional[Tensor]) -> Tensor:
    """Windows z [B,k+H,N,D], a [B,k+H,A] -> the H frames after the first k, rolled out from them [B,H,N,D]
    with the window's actions (``WorldModel.rollout``, the planner's step)."""
    k = model.config.context_frames
    return model.rollout(z[:, :k], a[:, k - 1:-1], None if s is None else s[:, :k], past_actions=a[:, :k - 1])


def predictor_losses(model: WorldModel, z: Tensor, a: Tensor, s: Optional[Tensor], beta: float = 0.0
                     ) -> Tuple[Tensor, Tensor]:
    """(teacher-forcing loss, rollout loss per horizon step [H]) on windows of k+H frames (L1 when beta=0)."""
    tf, per_h, _ = predictor_and_readout_losses(model, z, a, s, None, beta)
    return tf, per_h


def predictor_and_readout_losses(model: WorldModel, z: Tensor, a: Tensor, s: Optional[Tensor],
                                 targets: Optional[Tensor], beta: float = 0.0, readout_beta: float = 0.05
                                 ) -> Tuple[Tensor, Tensor, Tensor]:
    """``predictor_losses`` plus the read-out loss of the rolled-out latents: smooth-L1 between the (frozen)
    read-out of the predicted frames and the recorded positions targets [B,k+H,P] (normalised). It trains the
    predictor to get right what the planner's read-out energy looks at: where the block goes. 0 without
    targets or read-out."""
    k = model.config.context_frames
    ctx, act, st, tgt = teacher_forcing_inputs(z, a, s, k)
    tf = elementwise(model.predictor(ctx, act, st), tgt, beta).mean()
    pred = rollout_predictions(model, z, a, s)
    per_h = elementwise(pred, z[:, k:], beta).mean(dim=(0, 2, 3))  # [H]
    ro = tf.new_zeros(())
    if targets is not None and model.readout is not None:
        head = model.readout
        got = head.normalized(pred.flatten(0, 1))  # [B*H, P]
        want = head.normalize(targets[:, k:].flatten(0, 1))
        ro = F.smooth_l1_loss(got, want, beta=readout_beta)
    return tf, per_h, ro


def copy_baseline(z: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """"The latent does not change": (one-step L1, per-horizon L1 [H]) of predicting z[k-1] forever."""
    one = (z[:, k:] - z[:, k - 1:-1]).abs().mean()
    per_h = (z[:, k:] - z[:, k - 1:k]).abs().mean(dim=(0, 2, 3))
    return one, per_h
