"""The planner node's outgoing messages, built from core values (Commander commands, plans)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from std_msgs.msg import Float32MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ami_world_model.control.commander import Command
from ami_world_model.node_config import PlannerNodeConfig
from ami_world_model.safety import StopReason

LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR}


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


def diagnostics_msg(node, lifecycle: str, reason: Optional[StopReason], detail: str,
                    values: Dict[str, str]) -> DiagnosticArray:
    """One DiagnosticStatus: level from the stop reason's severity (OK while commanding)."""
    level = LEVELS[reason.severity] if reason is not None else DiagnosticStatus.OK
    message = f"{lifecycle}: {reason or 'commanding'}" + (f": {detail}" if detail else "")
    status = DiagnosticStatus(level=level, name=f"{node.get_name()}: planner",
                              hardware_id=node.get_fully_qualified_name(), message=message,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
    arr = DiagnosticArray(status=[status])
    arr.header.stamp = node.get_clock().now().to_msg()
    return arr
