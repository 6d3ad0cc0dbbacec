"""PlannerNodeConfig: every parameter of the planner node, with its description, range and default.

This dataclass (with the nested PlannerConfig as ``planner.*``) is the single source of truth: the node
declares its ROS parameters from it (``ros/params.py``), ``config/planner.yaml`` lists its defaults and
``docs/PARAMETERS.md`` is generated from it (``scripts/gen_param_docs.py``), so the three cannot drift.

The path from YAML to the object that uses a value: ``planner.yaml`` (or ``-p``) -> ROS parameter ->
``PlannerNodeConfig.from_params`` (strict) -> ``PlanningEngine`` (``cfg.planner`` -> the planner; backend
fields -> ``make_backend``) and ``SupervisorConfig.from_node`` (watchdog, goal, unsure-stop fields).
Core module: no rclpy here.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from ami_world_model.config import BACKENDS, ConfigError, check_params, from_dict, param
from ami_world_model.data.image_decoding import parse_crop
from ami_world_model.planning.config import PlannerConfig

OUTPUT_MODES = ("servo_twist", "joint_trajectory")
DEFAULT_CHECKPOINT = "models/default"  # the shipped model (path stem, resolved by resolve_checkpoint)
GROUPS = ("planner",)  # nested config fields, exposed as dotted parameters (planner.num_samples, ...)


@dataclass
class PlannerNodeConfig:
    """The planner node's parameters (ROS parameters and ``config/planner.yaml`` fill it)."""

    # --- model and backend ---
    checkpoint: str = param(
        DEFAULT_CHECKPOINT,
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
        "Servo's command-type service, called with TWIST on activate when moveit_msgs has ServoCommandType; "
        "otherwise (Humble) its sibling start_servo (std_srvs/Trigger) is called when it exists.")
    control_rate_hz: float = param(10.0, "Control (plan + publish) rate.", lo=0.5, hi=200.0)
    # --- inputs ---
    camera_topic: str = param("camera/image_raw", "Camera sensor_msgs/Image (sensor-data QoS, depth 1).")
    compressed_camera_topic: str = param(
        "", "Optional sensor_msgs/CompressedImage topic (jpeg/png); empty disables it.")
    image_crop: str = param(
        "none", "How a camera (and goal) frame is fitted to the model's input: none (resize the whole frame; a "
        "16:9 frame is squashed), center (the largest centred region with the model's aspect ratio) or x,y,w,h "
        "(a pixel ROI, then resize). Train with the same choice (BagSpec.image_crop).")
    joint_state_topic: str = param("joint_states", "sensor_msgs/JointState topic.")
    require_joint_states: bool = param(
        False, "Stop when joint states are stale. Forced on in joint_trajectory mode and when the model "
        "uses proprioception.")
    goal_topic: str = param("~/goal_image", "Goal sensor_msgs/Image (reliable, transient-local, depth 1).")
    estop_topic: str = param("/estop", "std_msgs/Bool e-stop: true stops until a false arrives.")
    start_enabled: bool = param(True, "Whether commanding is enabled after activation (see ~/enable).")
    # --- watchdog and limits ---
    max_image_age_s: float = param(0.5, "A camera frame older than this (receive time) is stale.",
                                   lo=0.01, hi=10.0, live=True)
    max_joint_state_age_s: float = param(0.5, "A joint state older than this is stale.", lo=0.01, hi=10.0,
                                         live=True)
    max_linear_velocity_mps: float = param(0.1, "Clamp on each linear twist component (the planner's sampling "
                                                "bounds keep the configure-time value).", lo=0.0, hi=2.0, live=True)
    max_angular_velocity_radps: float = param(0.5, "Clamp on each angular twist component.", lo=0.0, hi=6.0,
                                              live=True)
    max_joint_velocity_radps: float = param(0.5, "Clamp on each joint velocity.", lo=0.0, hi=6.0, live=True)
    max_linear_accel_mps2: float = param(1.0, "Clamp on the change of linear components per second.",
                                         lo=0.0, hi=50.0, live=True)
    max_angular_accel_radps2: float = param(4.0, "Clamp on the change of angular components per second.",
                                            lo=0.0, hi=100.0, live=True)
    max_joint_accel_radps2: float = param(4.0, "Clamp on the change of joint velocities per second.",
                                          lo=0.0, hi=100.0, live=True)
    # --- goal and stop-when-unsure ---
    goal_energy_threshold: float = param(
        0.006, "Goal reached when the current latent's L1 energy to the goal stays below this. Model-specific: "
        "keep it below the checkpoint's metrics['val_one_step_l1'] (one control step's latent change; 0.009 "
        "for the shipped model, where 0.006 is ~1 mm of tool error).", lo=0.0, hi=1e3, live=True)
    goal_distance_threshold_m: float = param(
        0.012, "With the read-out energy (planner.energy readout, or auto on a model trained with poses): goal "
        "reached when the weighted distance of the tool and objects to their goal positions (metres, the "
        "checkpoint's readout.weights) stays below this.", lo=0.0, hi=10.0, live=True)
    goal_reached_ticks: int = param(3, "Ticks below the goal threshold that count as reached.",
                                    lo=1, hi=1000, live=True)
    surprise_ratio_threshold: float = param(
        4.0, "Stop when one-step surprise / the checkpoint's val_one_step_l1 stays above this.",
        lo=0.0, hi=1e4, live=True)
    surprise_ticks: int = param(5, "Consecutive surprising ticks that trigger the unsure stop; 0 disables.",
                                lo=0, hi=1000, live=True)
    surprise_scale_fallback: float = param(
        0.1, "Absolute L1 scale for surprise when the checkpoint lacks metrics['val_one_step_l1'].",
        lo=1e-9, hi=1e3)
    no_progress_ticks: int = param(
        20, "Consecutive ticks whose best plan is no better than doing nothing that trigger the unsure "
        "stop; 0 disables.", lo=0, hi=10000, live=True)
    no_progress_margin: float = param(
        0.0, "A plan counts as progress when its energy < do-nothing energy * (1 - margin).", lo=0.0, hi=1.0,
        live=True)
    # --- planner (every PlannerConfig field is the parameter planner.<field>) ---
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    planner_deadline_fraction: float = param(
        0.8, "Planning deadline as a fraction of the control period.", lo=0.05, hi=1.0)
    planner_fixed_budget: bool = param(
        False, "Run all planner.iterations x planner.num_samples every tick with no wall-clock deadline "
        "(evaluation: the same result on any machine; a slow machine then sends late commands). False: the "
        "robot's mode, the search stops at planner_deadline_fraction of the period.")
    planner_autosize: bool = param(
        True, "Deadline mode: at configure, time a planner-sized batched rollout and cut planner.num_samples "
        "(then iterations; top_k in proportion) so a tick fits the deadline; never above the configured "
        "budget. The choice is logged and reported on ~/status and /diagnostics.")
    # --- observability ---
    diagnostics_rate_hz: float = param(1.0, "/diagnostics publish rate (every lifecycle state).",
                                       lo=0.1, hi=50.0)
    debug_image_rate_hz: float = param(1.0, "~/debug_image (current | goal) rate; 0 disables.",
                                       lo=0.0, hi=30.0)
    log_throttle_s: float = param(2.0, "Minimum interval between repeated warnings of one kind.",
                                  lo=0.0, hi=60.0)

    def __post_init__(self) -> None:
        check_params(self)
        if not isinstance(self.planner, PlannerConfig):
            raise ConfigError(f"PlannerNodeConfig.planner must be a PlannerConfig, got {self.planner!r}")
        if not self.checkpoint:
            raise ConfigError("PlannerNodeConfig.checkpoint must not be empty")
        try:
            parse_crop(self.image_crop)
        except ValueError as exc:
            raise ConfigError(f"PlannerNodeConfig.image_crop: {exc}") from None

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    @classmethod
    def from_params(cls, values: Dict[str, Any]) -> PlannerNodeConfig:
        """Strict build from a flat dict of parameter names (``planner.num_samples`` for nested fields, as ROS
        parameters and YAML name them): unknown keys are errors."""
        nested: Dict[str, Any] = {}
        for name, value in values.items():
            group, dot, key = name.partition(".")
            if dot and group in GROUPS:
                nested.setdefault(group, {})[key] = value
            else:
                nested[name] = value
        return from_dict(cls, nested)

    def to_params(self) -> Dict[str, Any]:
        """The flat parameter dict ``from_params`` takes (lists copied)."""
        out: Dict[str, Any] = {}
        for row in parameter_table():
            obj, key = self, row.name
            if "." in key:
                group, key = key.split(".", 1)
                obj = getattr(self, group)
            value = getattr(obj, key)
            out[row.name] = list(value) if isinstance(value, list) else value
        return out


class ParamRow(NamedTuple):
    """One node parameter: dotted name, default, description, range, choices, Python type, applied live."""

    name: str
    default: Any
    description: str
    range: Optional[Tuple[float, float]]
    choices: Optional[Tuple[str, ...]]
    type: Any
    live: bool


def _rows(cls: Any, prefix: str) -> List[ParamRow]:
    hints = typing.get_type_hints(cls)
    defaults = cls()
    rows: List[ParamRow] = []
    for f in dataclasses.fields(cls):
        if f.name in GROUPS:
            rows += _rows(hints[f.name], f"{prefix}{f.name}.")
            continue
        m = f.metadata
        rows.append(ParamRow(prefix + f.name, getattr(defaults, f.name), m["description"], m["range"],
                             m["choices"], hints[f.name], bool(m.get("live", False))))
    return rows


def parameter_table() -> List[ParamRow]:
    """One row per node parameter (nested PlannerConfig fields as ``planner.<name>``), in declaration order."""
    return _rows(PlannerNodeConfig, "")


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
