"""SimConfig: every knob of the simulated cell, as one strict dataclass (build with ``config.from_dict``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from ami_world_model.config import ActionSpec, ConfigError


@dataclass
class RandomizationConfig:
    """Domain randomisation applied at each ``reset`` when ``SimConfig.randomize`` is true."""

    light_scale: float = 0.35  # diffuse/ambient light multiplied by U(1 - s, 1 + s)
    color_jitter: float = 0.12  # added to each RGB channel of table, mat, arm and block: U(-j, j)
    camera_pos_m: float = 0.015  # camera position offset per axis: U(-p, p) metres
    camera_rot_rad: float = 0.04  # camera rotation about a random axis: U(-r, r) radians


@dataclass
class SimConfig:
    """The simulated SCARA cell: rendering, control periods, limits, task sampling."""

    image_height: int = 64
    image_width: int = 64
    camera: str = "overhead"
    control_dt_s: float = 0.1  # one action (and one camera frame) per control period
    servo_dt_s: float = 0.01  # the Servo/JTC inner loop: Jacobian recomputed at this period
    max_linear_speed_mps: float = 0.1  # twist commands are clamped to this norm (per component first)
    max_joint_speed: List[float] = field(default_factory=lambda: [1.5, 2.0, 0.08])  # rad/s, rad/s, m/s
    damping: float = 0.02  # damped least squares lambda (m): keeps joint speeds finite near singularities
    # Kept from the hard limits by both interfaces (rad, rad, m): commands stop short of the MJCF limits.
    joint_limit_margin: List[float] = field(default_factory=lambda: [0.02, 0.02, 0.002])
    # The virtual fence (x_min, x_max, y_min, y_max) in base_link: the twist interface never drives the tool
    # out of it, so the tool stays in the camera view (a real cell has the same kind of software limit).
    workspace: List[float] = field(default_factory=lambda: [0.11, 0.33, -0.13, 0.13])
    # Where starts and goals are sampled (a margin inside the fence).
    sample_area: List[float] = field(default_factory=lambda: [0.13, 0.31, -0.11, 0.11])
    tool_height_m: float = 0.0  # lift joint position held by the planar twist actions (0: pushing height)
    reach_tolerance_m: float = 0.02  # reach succeeds when the tool is this close to the goal (x, y)
    push_tolerance_m: float = 0.025  # push succeeds when the block centre is this close to the goal (x, y)
    push_distance_m: List[float] = field(default_factory=lambda: [0.04, 0.08])  # how far push goals are
    randomize: bool = False
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)

    def __post_init__(self) -> None:
        if self.image_height <= 0 or self.image_width <= 0:
            raise ConfigError(f"SimConfig: image size must be positive, got {self.image_height}x{self.image_width}")
        if self.control_dt_s <= 0 or self.servo_dt_s <= 0 or self.servo_dt_s > self.control_dt_s:
            raise ConfigError(
                f"SimConfig: need 0 < servo_dt_s ({self.servo_dt_s}) <= control_dt_s ({self.control_dt_s})"
            )
        if len(self.joint_limit_margin) != 3 or any(m < 0 for m in self.joint_limit_margin):
            raise ConfigError(f"SimConfig.joint_limit_margin: 3 values >= 0, got {self.joint_limit_margin}")
        if len(self.max_joint_speed) != 3 or any(v <= 0 for v in self.max_joint_speed):
            raise ConfigError(f"SimConfig.max_joint_speed: 3 positive values, got {self.max_joint_speed}")
        for name in ("workspace", "sample_area"):
            box = getattr(self, name)
            if len(box) != 4 or box[0] >= box[1] or box[2] >= box[3]:
                raise ConfigError(f"SimConfig.{name}: [x_min, x_max, y_min, y_max] with min < max, got {box}")
        if len(self.push_distance_m) != 2 or not 0 < self.push_distance_m[0] <= self.push_distance_m[1]:
            raise ConfigError(f"SimConfig.push_distance_m: [min, max] > 0, got {self.push_distance_m}")
        if self.max_linear_speed_mps <= 0:
            raise ConfigError("SimConfig.max_linear_speed_mps must be positive")

    def action_spec(self) -> ActionSpec:
        """The default learning action space: planar tool velocity in base_link, held for control_dt_s."""
        v = self.max_linear_speed_mps
        return ActionSpec(
            kind="twist",
            names=["linear.x", "linear.y"],
            low=[-v, -v],
            high=[v, v],
            mean=[0.0, 0.0],
            std=[v / 2, v / 2],
            frame_id="base_link",
            dt_s=self.control_dt_s,
        )
