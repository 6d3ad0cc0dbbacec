"""PlannerNodeConfig: every parameter of the planner node, with its description, range and default.

This dataclass is the single source of truth: the node declares its ROS parameters from it
(``ros/params.py``), ``config/planner.yaml`` lists its defaults and ``docs/PARAMETERS.md`` is generated
from it (``scripts/gen_param_docs.py``), so the three cannot drift. Core module: no rclpy here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ami_world_model.config import ConfigError, from_dict

OUTPUT_MODES = ("servo_twist", "joint_trajectory")
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
PLANNER_METHODS = ("cem", "mppi")


def param(default: Any, description: str, *, lo: Optional[float] = None, hi: Optional[float] = None,
          choices: Optional[Sequence[str]] = None) -> Any:
    """A dataclass field carrying what a ROS parameter descriptor needs (description, range, choices)."""
    meta = {"description": description, "range": (lo, hi) if lo is not None else None,
            "choices": tuple(choices) if choices else None}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class PlannerNodeConfig:
    """The planner node's parameters (ROS parameters and ``config/planner.yaml`` fill it)."""

    # --- model and backend ---
    checkpoint: str = param(
        "models/default",
        "World-model checkpoint path without extension (<path>.safetensors + <path>.json). Relative paths "
        "resolve against the package share dir, then the repository root, then the working directory.")
    backend: str = param("auto", "Inference backend.", choices=BACKENDS)
    device: str = param("cpu", "Device for the backend and the planner (cpu, cuda, cuda:1).")
    engine_cache_dir: str = param(
        "", "ONNX exports and TensorRT engines (built when missing, keyed on model, GPU and TensorRT "
        "version). Empty: $AMI_WM_CACHE_DIR or ~/.cache/ami_world_model.")
    onnx_dir: str = param("", "Use the ONNX files from `ami-wm export` in this folder; empty: export into "
                              "the cache.")
    enable_fp16: bool = param(True, "Build TensorRT engines in FP16 (other backends run FP32).")
    backend_num_threads: int = param(0, "ONNX Runtime intra-op threads on CPU; 0: its default.", lo=0, hi=256)
    # --- output ---
    output_mode: str = param(
        "servo_twist", "servo_twist: TwistStamped to MoveIt Servo; joint_trajectory: one-point "
        "JointTrajectory to a JointTrajectoryController.", choices=OUTPUT_MODES)
    twist_topic: str = param("servo_node/delta_twist_cmds", "TwistStamped command topic (servo_twist).")
    twist_frame_id: str = param("base_link", "header.frame_id of twist commands (Servo requires one).")
    trajectory_topic: str = param("joint_trajectory_controller/joint_trajectory",
                                  "JointTrajectory command topic (joint_trajectory).")
    joint_names: List[str] = param(
        [], "Joints commanded in joint_trajectory mode; must equal the checkpoint's joint_velocity action "
        "names. Empty: take them from the checkpoint.")
    servo_switch_service: str = param(
        "servo_node/switch_command_type",
        "Servo's command-type service, called with TWIST on activate when moveit_msgs is importable.")
    control_rate_hz: float = param(10.0, "Control (plan + publish) rate.", lo=0.5, hi=200.0)
    # --- inputs ---
    camera_topic: str = param("camera/image_raw", "Camera sensor_msgs/Image (sensor-data QoS, depth 1).")
    compressed_camera_topic: str = param(
        "", "Optional sensor_msgs/CompressedImage topic (jpeg/png); empty disables it.")
    joint_state_topic: str = param("joint_states", "sensor_msgs/JointState topic.")
    require_joint_states: bool = param(
        False, "Stop when joint states are stale. Forced on in joint_trajectory mode and when the model "
        "uses proprioception.")
    goal_topic: str = param("~/goal_image", "Goal sensor_msgs/Image (reliable, transient-local, depth 1).")
    estop_topic: str = param("/estop", "std_msgs/Bool e-stop: true stops until a false arrives.")
    start_enabled: bool = param(True, "Whether commanding is enabled after activation (see ~/enable).")
    # --- watchdog and limits ---
    max_image_age_s: float = param(0.5, "A camera frame older than this (receive time) is stale.",
                                   lo=0.01, hi=10.0)
    max_joint_state_age_s: float = param(0.5, "A joint state older than this is stale.", lo=0.01, hi=10.0)
    max_linear_velocity_mps: float = param(0.1, "Clamp on each linear twist component.", lo=0.0, hi=2.0)
    max_angular_velocity_radps: float = param(0.5, "Clamp on each angular twist component.", lo=0.0, hi=6.0)
    max_joint_velocity_radps: float = param(0.5, "Clamp on each joint velocity.", lo=0.0, hi=6.0)
    max_linear_accel_mps2: float = param(1.0, "Clamp on the change of linear components per second.",
                                         lo=0.0, hi=50.0)
    max_angular_accel_radps2: float = param(4.0, "Clamp on the change of angular components per second.",
                                            lo=0.0, hi=100.0)
    max_joint_accel_radps2: float = param(4.0, "Clamp on the change of joint velocities per second.",
                                          lo=0.0, hi=100.0)
    # --- goal and stop-when-unsure ---
    goal_energy_threshold: float = param(
        0.006, "Goal reached when the current latent's L1 energy to the goal stays below this. Model-specific: "
        "keep it below the checkpoint's metrics['val_one_step_l1'] (one control step's latent change; 0.009 "
        "for the shipped model, where 0.006 is ~1 mm of tool error).", lo=0.0, hi=1e3)
    goal_reached_ticks: int = param(3, "Ticks below goal_energy_threshold that count as reached.",
                                    lo=1, hi=1000)
    surprise_ratio_threshold: float = param(
        4.0, "Stop when one-step surprise / the checkpoint's val_one_step_l1 stays above this.",
        lo=0.0, hi=1e4)
    surprise_ticks: int = param(5, "Consecutive surprising ticks that trigger the unsure stop; 0 disables.",
                                lo=0, hi=1000)
    surprise_scale_fallback: float = param(
        0.1, "Absolute L1 scale for surprise when the checkpoint lacks metrics['val_one_step_l1'].",
        lo=1e-9, hi=1e3)
    no_progress_ticks: int = param(
        20, "Consecutive ticks whose best plan is no better than doing nothing that trigger the unsure "
        "stop; 0 disables.", lo=0, hi=10000)
    no_progress_margin: float = param(
        0.0, "A plan counts as progress when its energy < do-nothing energy * (1 - margin).", lo=0.0, hi=1.0)
    # --- planner ---
    planner_method: str = param("cem", "Sampling planner.", choices=PLANNER_METHODS)
    planner_horizon_steps: int = param(3, "Planning horizon (actions).", lo=1, hi=100)
    planner_num_samples: int = param(64, "Candidate action sequences per iteration.", lo=2, hi=100000)
    planner_iterations: int = param(4, "Max optimiser iterations per tick (anytime: the deadline may cut).",
                                    lo=1, hi=1000)
    planner_deadline_fraction: float = param(
        0.8, "Planning deadline as a fraction of the control period.", lo=0.05, hi=1.0)
    # --- observability ---
    diagnostics_rate_hz: float = param(1.0, "/diagnostics publish rate (every lifecycle state).",
                                       lo=0.1, hi=50.0)
    debug_image_rate_hz: float = param(1.0, "~/debug_image (current | goal) rate; 0 disables.",
                                       lo=0.0, hi=30.0)
    log_throttle_s: float = param(2.0, "Minimum interval between repeated warnings of one kind.",
                                  lo=0.0, hi=60.0)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            rng = f.metadata.get("range")
            if rng is not None and not (rng[0] <= value <= rng[1]):
                raise ConfigError(f"PlannerNodeConfig.{f.name}={value!r} outside [{rng[0]}, {rng[1]}]")
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise ConfigError(f"PlannerNodeConfig.{f.name}={value!r} must be one of {list(choices)}")
        if not self.checkpoint:
            raise ConfigError("PlannerNodeConfig.checkpoint must not be empty")

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    @classmethod
    def from_params(cls, values: Dict[str, Any]) -> PlannerNodeConfig:
        """Strict build from a flat dict (ROS parameters, YAML): unknown keys are errors."""
        return from_dict(cls, dict(values))


def parameter_table() -> List[Tuple[str, Any, str, Optional[Tuple[float, float]], Optional[Tuple[str, ...]]]]:
    """(name, default, description, range, choices) per parameter, in declaration order."""
    rows = []
    defaults = PlannerNodeConfig()
    for f in dataclasses.fields(PlannerNodeConfig):
        rows.append((f.name, getattr(defaults, f.name), f.metadata["description"], f.metadata["range"],
                     f.metadata["choices"]))
    return rows


def resolve_checkpoint(path: str, share_dir: Optional[Path] = None, repo_root: Optional[Path] = None,
                       cwd: Optional[Path] = None) -> Path:
    """Resolve a checkpoint path (without extension) to an existing ``<path>.json`` stem.

    Absolute paths are used as given. Relative ones are tried, in order, against the package share dir
    (``share/ami_world_model``, the colcon install), the repository root (pip editable install), then the
    working directory. Raises FileNotFoundError naming every place tried.
    """
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    if p.is_absolute():
        candidates = [p]
    else:
        here = Path(__file__).resolve().parents[1]
        bases = [b for b in (share_dir, repo_root or here, cwd or Path.cwd()) if b is not None]
        candidates = [b / p for b in bases]
    for c in candidates:
        if (c.parent / (c.name + ".json")).exists():
            return c
    raise FileNotFoundError(
        f"checkpoint {path!r} not found; tried {[str(c) + '.json' for c in candidates]}")
