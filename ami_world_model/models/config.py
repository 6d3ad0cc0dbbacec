"""Model configs: the ViT encoder, the action-conditioned predictor and the world model that holds both.

Every field is stored in the checkpoint JSON, so a checkpoint rebuilds its model from the file alone.
Size factories: ``WorldModelConfig.tiny()`` (the default, trains and plans on a 2-core CPU) and
``WorldModelConfig.vit_s16_224()`` (ViT-S/16 at 224x224 for GPU / Jetson users).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from ami_world_model.config import ActionSpec, ConfigError, ImageSpec, StateSpec


@dataclass
class EncoderConfig:
    """ViT encoder: patch grid -> pre-norm transformer -> pooled "latent grid" of N tokens of dim D."""

    patch_size: int = 8  # 64x64 input -> 8x8 patch grid
    embed_dim: int = 96  # D, the latent dim the predictor and planner see
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 4.0
    pool: int = 2  # average-pool the patch grid pool x pool -> 4x4 = 16 latent tokens (cheap planning)

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"EncoderConfig: embed_dim {self.embed_dim} not divisible by num_heads {self.num_heads}")
        if min(self.patch_size, self.embed_dim, self.depth, self.num_heads, self.pool) < 1:
            raise ConfigError(f"EncoderConfig: sizes must be positive, got {self}")

    def grid(self, image: ImageSpec) -> List[int]:
        """Patch grid [gh, gw] for ``image``; raises ConfigError when sizes do not divide."""
        if image.height % self.patch_size or image.width % self.patch_size:
            raise ConfigError(
                f"image {image.height}x{image.width} is not a multiple of patch_size {self.patch_size}"
            )
        gh, gw = image.height // self.patch_size, image.width // self.patch_size
        if gh % self.pool or gw % self.pool:
            raise ConfigError(f"patch grid {gh}x{gw} is not a multiple of pool {self.pool}")
        return [gh, gw]

    def latent_grid(self, image: ImageSpec) -> List[int]:
        gh, gw = self.grid(image)
        return [gh // self.pool, gw // self.pool]


@dataclass
class PredictorConfig:
    """Action-conditioned predictor: block-causal transformer over k frames of (action, [state], latents)."""

    embed_dim: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 2.0
    max_frames: int = 8  # temporal position table size; context_frames must not exceed it

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f"PredictorConfig: embed_dim {self.embed_dim} not divisible by num_heads {self.num_heads}"
            )
        if min(self.embed_dim, self.depth, self.num_heads, self.max_frames) < 1:
            raise ConfigError(f"PredictorConfig: sizes must be positive, got {self}")


@dataclass
class JepaConfig:
    """The narrow JEPA predictor used only while pretraining the encoder (not part of the world model)."""

    embed_dim: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 2.0

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"JepaConfig: embed_dim {self.embed_dim} not divisible by num_heads {self.num_heads}")


READOUT_KINDS = ("mlp", "spatial")


@dataclass
class ReadoutConfig:
    """Positions read out of a latent frame (metres): the planner's task energy when a model has one.

    Trained from recorded poses (``ami-wm train predictor --pose-topic ...``: a tracker, TF or the simulator's
    ground truth). ``names`` come in (x, y) pairs per object ("block.x", "block.y"); the read-out energy is
    the sum over objects of ``weights[object]`` x the object's planar distance to its goal position.
    Empty ``names``: no read-out, the planner uses the latent energy.
    """

    names: List[str] = field(default_factory=list)
    mean: List[float] = field(default_factory=list)  # normalisation of the targets (measured on the data)
    std: List[float] = field(default_factory=list)
    weights: Dict[str, float] = field(default_factory=dict)  # object -> energy weight; missing: 1.0
    hidden: int = 256  # MLP width
    # Head: "mlp" (flatten the tokens -> MLP) or "spatial" (per object, a softmax over the latent tokens and an
    # offset within the token: position regression that learns small objects far faster; models/readout.py).
    kind: str = "mlp"
    metrics: Dict[str, Any] = field(default_factory=dict)  # held-out error per object (mm), encoded/predicted

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.names) or len(self.std) != len(self.names):
            raise ConfigError(f"ReadoutConfig: mean/std must have {len(self.names)} entries, got {self}")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"ReadoutConfig.std must be positive, got {self.std}")
        if self.hidden < 1:
            raise ConfigError(f"ReadoutConfig.hidden must be positive, got {self.hidden}")
        if self.kind not in READOUT_KINDS:
            raise ConfigError(f"ReadoutConfig.kind must be one of {READOUT_KINDS}, got {self.kind!r}")
        objects = self.objects()  # raises on names that do not pair up
        unknown = sorted(set(self.weights) - set(objects))
        if unknown:
            raise ConfigError(f"ReadoutConfig.weights: unknown object(s) {unknown}; objects are {objects}")
        if any(not w >= 0 for w in self.weights.values()):
            raise ConfigError(f"ReadoutConfig.weights must be >= 0, got {self.weights}")

    @property
    def dim(self) -> int:
        return len(self.names)

    def objects(self) -> List[str]:
        """Object names, one per (x, y) pair of ``names`` ("block.x", "block.y" -> "block")."""
        if len(self.names) % 2:
            raise ConfigError(f"ReadoutConfig.names must come in (x, y) pairs, got {self.names}")
        out = []
        for nx, ny in zip(self.names[0::2], self.names[1::2]):
            ox, _, ax = nx.rpartition(".")
            oy, _, ay = ny.rpartition(".")
            if not ox or ox != oy or (ax, ay) != ("x", "y"):
                raise ConfigError(f"ReadoutConfig.names: expected '<object>.x', '<object>.y', got {nx!r}, {ny!r}")
            out.append(ox)
        return out

    def object_weights(self) -> List[float]:
        return [float(self.weights.get(o, 1.0)) for o in self.objects()]


@dataclass
class PoseDynamicsConfig:
    """Read-out-space dynamics (``models/pose_dynamics.py``): the read-out positions and the proprioceptive
    state one recorded control period later, from the current ones and the command.

    ``frame`` names two read-out objects that move as one rigid body (an origin and a point on it that gives
    its heading, e.g. ``["block", "block_tip"]``): the head predicts in that body's frame, so what it learns
    about a push at one place and angle holds at every other. Empty ``frame``: no head (the planner steps
    the latent predictor). The command and, with ``planar_state``, the state come in (x, y) pairs in the
    same world axes as the positions (a planar tool's velocity command and joint velocities).
    """

    frame: List[str] = field(default_factory=list)  # [origin object, heading object]; empty: no head
    hidden: int = 256
    depth: int = 3  # hidden layers
    substeps: int = 1  # records per model step (the frame skip); the step's command is held through them
    planar_state: bool = True  # rotate the state's (x, y) pairs into the body frame with the command
    # Fixed walls the body can be pushed against, each [x, y, nx, ny]: a point on its surface and its normal
    # pointing into the workspace (the positions' units). The head sees each as the vector from the body's
    # origin to the wall, in the body frame, its length clipped at ``wall_range``: contact with a wall depends
    # on where it lies in the body frame, which the body's relative features cannot see.
    walls: List[List[float]] = field(default_factory=list)
    wall_range: float = 0.2
    in_mean: List[float] = field(default_factory=list)  # feature normalisation (measured on the data)
    in_std: List[float] = field(default_factory=list)
    out_std: List[float] = field(default_factory=list)  # scale of each output (measured on the data)
    metrics: Dict[str, Any] = field(default_factory=dict)  # held-out error per object (mm) vs no motion

    def __post_init__(self) -> None:
        if self.frame and (len(self.frame) != 2 or self.frame[0] == self.frame[1]):
            raise ConfigError(f"PoseDynamicsConfig.frame must name two different objects, got {self.frame}")
        if self.hidden < 1 or self.depth < 1 or self.substeps < 1:
            raise ConfigError(f"PoseDynamicsConfig: hidden, depth and substeps must be positive, got {self}")
        for w in self.walls:
            if len(w) != 4 or not all(math.isfinite(x) for x in w) or math.hypot(w[2], w[3]) == 0:
                raise ConfigError(f"PoseDynamicsConfig.walls: each wall is [x, y, nx, ny], finite, with a non-zero "
                                  f"normal; got {w}")
        if not self.wall_range > 0:
            raise ConfigError(f"PoseDynamicsConfig.wall_range must be > 0, got {self.wall_range}")
        if len(self.in_mean) != len(self.in_std) or any(not s > 0 for s in self.in_std + self.out_std):
            raise ConfigError("PoseDynamicsConfig: in_mean/in_std must pair up and in_std/out_std be positive")

    @property
    def enabled(self) -> bool:
        return bool(self.frame)

    def sizes(self, objects: int, state_dim: int, action_dim: int) -> Tuple[int, int]:
        """(features, outputs): other objects' positions, state and command in; their displacements, the
        body's displacement and turn, and the next state out."""
        return 2 * (objects - 2) + state_dim + action_dim + 2 * len(self.walls), 2 * (objects - 2) + 3 + state_dim


@dataclass
class WorldModelConfig:
    """Everything needed to rebuild a WorldModel (stored in its checkpoint JSON)."""

    image: ImageSpec = field(default_factory=ImageSpec)
    action: ActionSpec = field(default_factory=ActionSpec)
    state: StateSpec = field(default_factory=StateSpec)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    pose_dynamics: PoseDynamicsConfig = field(default_factory=PoseDynamicsConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    context_frames: int = 1  # k: frames of latents the predictor conditions on
    metrics: Dict[str, Any] = field(default_factory=dict)  # validation errors (val_one_step_l1, ...)
    data: Dict[str, Any] = field(default_factory=dict)  # training data summary (EpisodeSet.summary())

    def __post_init__(self) -> None:
        if not 1 <= self.context_frames <= self.predictor.max_frames:
            raise ConfigError(
                f"context_frames {self.context_frames} must be in [1, predictor.max_frames="
                f"{self.predictor.max_frames}]"
            )
        self.encoder.grid(self.image)  # raises when the image and patch sizes disagree
        if len(self.state.mean) != self.state.dim or len(self.state.std) != self.state.dim:
            raise ConfigError(f"StateSpec: mean/std must have {self.state.dim} entries, got {self.state}")
        if any(s <= 0 for s in self.state.std):
            raise ConfigError(f"StateSpec.std must be positive, got {self.state.std}")
        if self.pose_dynamics.enabled:
            self.check_pose_dynamics()

    def check_pose_dynamics(self) -> None:
        """ConfigError when the pose-dynamics head does not fit this model's read-out, state and action."""
        pd = self.pose_dynamics
        objects = self.readout.objects()
        missing = [o for o in pd.frame if o not in objects]
        if missing:
            raise ConfigError(f"pose_dynamics.frame {pd.frame}: {missing} not among the read-out objects {objects}")
        if self.action.dim % 2 or (pd.planar_state and self.state.dim % 2):
            rotated = f" and the state (dim {self.state.dim})" if pd.planar_state else ""
            raise ConfigError(f"pose dynamics rotate the command (dim {self.action.dim}){rotated} as (x, y) pairs: "
                              "their dims must be even")
        n_in, n_out = pd.sizes(len(objects), self.state.dim, self.action.dim)
        if pd.in_mean and (len(pd.in_mean) != n_in or len(pd.out_std) != n_out):
            raise ConfigError(f"pose_dynamics: {len(pd.in_mean)} features / {len(pd.out_std)} outputs stored, "
                              f"the read-out, state and action need {n_in} / {n_out}")

    @property
    def num_latents(self) -> int:
        """N, latent tokens per frame."""
        gh, gw = self.encoder.latent_grid(self.image)
        return gh * gw

    @property
    def latent_dim(self) -> int:
        """D, the latent token dim."""
        return self.encoder.embed_dim

    @classmethod
    def tiny(cls, **overrides: Any) -> WorldModelConfig:
        """Default CPU model: 64x64 input, 8x8 patches of dim 96, 16 latent tokens, 2-layer predictor."""
        return cls(**overrides)

    @classmethod
    def vit_s16_224(cls, **overrides: Any) -> WorldModelConfig:
        """ViT-S/16 at 224x224 (14x14 patches, 7x7 latent grid after 2x2 pooling), for GPU / Jetson."""
        kw: Dict[str, Any] = dict(
            image=ImageSpec(height=224, width=224, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
            encoder=EncoderConfig(patch_size=16, embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0, pool=2),
            predictor=PredictorConfig(embed_dim=384, depth=6, num_heads=6, mlp_ratio=4.0, max_frames=16),
            context_frames=2,
        )
        kw.update(overrides)
        return cls(**kw)
