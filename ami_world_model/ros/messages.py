"""The planner node's outgoing messages and log texts, built from core values (Commander commands, plans,
status): the node only publishes them."""
from __future__ import annotations

import json
from typing import Optional, Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32MultiArray, MultiArrayDimension, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ami_world_model.control.commander import Command, Commander
from ami_world_model.node_config import PlannerNodeConfig
from ami_world_model.ros import conversions
from ami_world_model.safety import StopReason

LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR}
QOS_HINTS = {  # what a publisher the planner cannot hear should do instead
    "goal": "publish it latched: ros2 topic pub --once --qos-durability transient_local "
            "--qos-reliability reliable {topic} sensor_msgs/msg/Image ...",
    "e-stop": "publish it reliable (ros2 topic pub's default); a best-effort e-stop is not accepted",
}


def stamp_ns(stamp) -> int:
    """A builtin_interfaces/Time as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def duration_msg(seconds: float) -> Duration:
    return Duration(sec=int(seconds), nanosec=int(round((seconds % 1.0) * 1e9)))


def command_msg(cmd: Command, cfg: PlannerNodeConfig, action_names: Sequence[str], joint_names: Sequence[str]):
    """TwistStamped (servo_twist) or a one-point JointTrajectory (joint_trajectory), stamped ``cmd.stamp_ns``."""
    if cfg.output_mode == "servo_twist":
        msg = TwistStamped()
        msg.header.frame_id = cfg.twist_frame_id
        for name, x in zip(action_names, cmd.values):
            group, axis = name.split(".")
            setattr(getattr(msg.twist, group), axis, float(x))
    else:
        msg = JointTrajectory()
        msg.joint_names = list(joint_names)
        # positions only (velocities empty): JTC rejects non-zero end velocity by default
        msg.points = [JointTrajectoryPoint(positions=[float(p) for p in cmd.positions],
                                           time_from_start=duration_msg(cmd.duration_s))]
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(cmd.stamp_ns, 1_000_000_000)
    return msg


def plan_msg(actions: np.ndarray) -> Float32MultiArray:
    """[H, A] plan with its layout (labels horizon, action)."""
    h, a = actions.shape
    msg = Float32MultiArray(data=[float(x) for x in actions.reshape(-1)])
    msg.layout.dim = [MultiArrayDimension(label="horizon", size=h, stride=h * a),
                      MultiArrayDimension(label="action", size=a, stride=a)]
    return msg


def state_msgs(core: Optional[Commander]) -> tuple:
    """(~/safety_state String, ~/goal_reached Bool). Goal reached is the latch, not the current reason: a goal
    stays reached while e.g. the camera drops out."""
    reached = core is not None and core.sup.latched == StopReason.GOAL_REACHED
    return String(data=core.safety_state if core else "unconfigured"), Bool(data=reached)


def status_msg(lifecycle: str, now_ns: int, core: Optional[Commander], reason: Optional[StopReason],
               detail: str) -> String:
    """The public ~/status JSON: lifecycle state, the clock, and the Commander's status (or, without one, the
    reason there is none and why configure failed)."""
    status = {"lifecycle_state": lifecycle, "stamp_ns": now_ns,
              **(core.status() if core is not None else {"safety_state": reason.value, "detail": detail})}
    return String(data=json.dumps(status))


def diagnostics_msg(node, lifecycle: str, core: Optional[Commander], reason: Optional[StopReason],
                    detail: str) -> DiagnosticArray:
    """One DiagnosticStatus: level from the stop reason's severity (OK while commanding)."""
    values = {"lifecycle_state": lifecycle}
    values.update(core.diagnostic_values() if core is not None else
                  {"safety_state": reason.value, "backend": "none"})
    level = LEVELS[reason.severity] if reason is not None else DiagnosticStatus.OK
    message = f"{lifecycle}: {reason or 'commanding'}" + (f": {detail}" if detail else "")
    status = DiagnosticStatus(level=level, name=f"{node.get_name()}: planner",
                              hardware_id=node.get_fully_qualified_name(), message=message,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
    arr = DiagnosticArray(status=[status])
    arr.header.stamp = node.get_clock().now().to_msg()
    return arr


def debug_image_msg(frame: np.ndarray, goal: Optional[np.ndarray], stamp) -> Image:
    """The current model input (left) next to the goal image (right; black without a goal), rgb8."""
    cur = conversions.input_to_rgb8(frame)
    right = conversions.input_to_rgb8(goal) if goal is not None else np.zeros_like(cur)
    return conversions.rgb_to_image_msg(np.concatenate([cur, right], axis=1), Image, stamp, "debug")


def qos_mismatch_text(what: str, topic: str, policy_kind) -> str:
    """The error logged when a ``what`` ("goal" or "e-stop") publisher's QoS cannot reach the node."""
    return (f"a {what} publisher on {topic} offers an incompatible QoS (policy {policy_kind}); its messages do "
            f"not arrive. {QOS_HINTS[what].format(topic=topic)}")


def configured_text(path, cfg: PlannerNodeConfig, engine) -> str:
    """The one-line summary logged after a successful configure."""
    return (f"configured: checkpoint {path}, backend {getattr(engine.backend, 'name', '?')}, "
            f"output {cfg.output_mode}, actions {engine.spec.kind} {engine.spec.names} (model step: {engine.skip} "
            f"control period(s)), surprise scale {engine.surprise_scale:.4g} ({engine.surprise_scale_source})")
