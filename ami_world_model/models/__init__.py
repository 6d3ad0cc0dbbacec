"""The JEPA world model: ViT encoder, action-conditioned predictor, checkpoints.

Default sizes (``WorldModelConfig.tiny()``): 64x64 RGB -> 8x8 patches of dim 96, 4 pre-norm blocks, pooled
2x2 to a 4x4 latent grid (N=16, D=96), 466k parameters; predictor dim 64, depth 2, k=1 context frame,
81k parameters; a checkpoint is ~2.1 MB. ``WorldModelConfig.vit_s16_224()``: ViT-S/16 at 224x224 (21.6M) with
a 6-layer dim-384 predictor (11.0M), N=49, for GPU / Jetson users.

    from ami_world_model.models.checkpoint import load_world_model
    wm = load_world_model("runs/wm")                     # <stem>.safetensors + <stem>.json
    z = wm.encode(images)                                # [B,3,H,W] in [0,1] -> [B,N,D]
    z1 = wm.next(z[:, None], actions[:, None])           # -> [B,N,D]
    zs = wm.rollout(z[:, None], action_seq)              # [B,H,A] -> [B,H,N,D] (models/rollout.py)
    wm.config.metrics["val_one_step_l1"]                 # held-out one-step error (the "surprise" scale)
"""
