"""sim_cell_node: the simulated cell behind the same ROS 2 interfaces as a real cell with MoveIt Servo and a
JointTrajectoryController, so the planner node cannot tell the difference.

Publishes  camera/image_raw (sensor_msgs/Image rgb8, sensor-data QoS), camera/camera_info, joint_states
           at ``rate_hz``; /clock (sim time) every servo tick; ~/goal_image (latched) after every reset.
Subscribes servo_node/delta_twist_cmds (geometry_msgs/TwistStamped, reliable): a command is used while
           ``now - header.stamp < command_timeout_s`` (Servo's incoming_command_timeout); without a fresh one
           the arm stops. joint_trajectory_controller/joint_trajectory (trajectory_msgs/JointTrajectory):
           positions by joint name, as a Jazzy JTC: an empty trajectory is rejected ("Empty trajectory
           received."), it does not stop anything; a one-point trajectory to the current position does.
Services   ~/reset (std_srvs/Trigger): new start and goal from the ``seed`` and ``task`` parameters.

Names are relative, as a camera driver's, robot_state_publisher's and Servo's are: in the root namespace they
are /camera/image_raw, /servo_node/delta_twist_cmds, ...; under a namespace (``ami-wm run --namespace arm1``,
``namespace:=arm1`` in the launch file) they move into it with the planner's. /clock stays global (ROS's
use_sim_time listens there in every namespace).

Time: with ``use_sim_time`` true every stamp is sim time (the same as on /clock, monotonic across resets);
otherwise stamps are the node's (wall) clock and the sim runs in real time. Physics advances on a steady
wall timer at ``servo_rate_hz``; with ``autostep`` false nothing runs on its own and an in-process owner
(the eval harness) drives it with ``advance()``, sharing an executor.
"""
from __future__ import annotations

import json
from typing import Optional

import numpy as np
from geometry_msgs.msg import PointStamped, TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from ami_world_model.ros.lifecycle_util import spin_until_signal
from ami_world_model.sim.cell import TASKS, Goal, SimCell
from ami_world_model.sim.config import SimConfig

PARAMS = {
    # name: (default, description)
    "rate_hz": (10.0, "camera and joint_states rate (the control period of the learned model is 1/rate_hz)"),
    "servo_rate_hz": (100.0, "physics/servo loop rate; /clock is published at this rate"),
    "image_height": (64, "camera image height in pixels"),
    "image_width": (64, "camera image width in pixels"),
    "task": ("reach", "task the start and goal are sampled for: reach or push"),
    "seed": (0, "seed of the start and goal sampled by ~/reset"),
    "randomize": (False, "randomise lighting, colours and camera pose at reset"),
    "command_timeout_s": (0.1, "twist commands older than this are stale (MoveIt Servo incoming_command_timeout)"),
    "autostep": (True, "advance physics on a wall timer; false: an in-process owner calls advance()"),
    "twist_topic": ("servo_node/delta_twist_cmds", "TwistStamped command topic"),
    "trajectory_topic": ("joint_trajectory_controller/joint_trajectory", "JointTrajectory command topic"),
    "camera_frame_id": ("camera_optical_frame", "frame_id of images and camera_info"),
}
ACCEPTED_TWIST_FRAMES = ("base_link", "world", "")


def _time_msg(t: float):
    from builtin_interfaces.msg import Time

    ns = int(round(t * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class SimCellNode(Node):
    """The cell as a node. Usable in-process: ``SimCellNode(autostep=False)`` + ``reset()`` + ``advance()``."""

    def __init__(self, node_name: str = "sim_cell_node", autostep: Optional[bool] = None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        for name, (default, desc) in PARAMS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=desc))
        p = {name: self.get_parameter(name).value for name in PARAMS}
        if autostep is not None:
            p["autostep"] = autostep
        if not (p["rate_hz"] > 0 and p["servo_rate_hz"] >= p["rate_hz"]):
            raise ValueError(f"need 0 < rate_hz <= servo_rate_hz, got {p['rate_hz']}, {p['servo_rate_hz']}")
        if p["task"] not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {p['task']!r}")
        self._ticks_per_frame = max(1, int(round(p["servo_rate_hz"] / p["rate_hz"])))
        self._servo_dt = 1.0 / p["rate_hz"] / self._ticks_per_frame
        self.cell = SimCell(SimConfig(
            image_height=int(p["image_height"]), image_width=int(p["image_width"]), control_dt_s=1.0 / p["rate_hz"],
            servo_dt_s=self._servo_dt, randomize=bool(p["randomize"]),
        ))
        self._timeout = float(p["command_timeout_s"])
        self._frame_id = str(p["camera_frame_id"])
        self._time_offset = 1.0  # sim time of the current episode's t = 0 (never 0: a zero stamp means "none")
        self._tick = 0
        self._twist: Optional[np.ndarray] = None
        self._twist_stamp = -1.0
        self.stale_commands = 0  # commands dropped as stale on arrival (also logged)
        self.commands_received = 0
        self.rejected_trajectories = 0  # trajectories a JTC would reject (empty, unknown joints, ...)

        self._pub_image = self.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
        self._pub_info = self.create_publisher(CameraInfo, "camera/camera_info", qos_profile_sensor_data)
        self._pub_joints = self.create_publisher(JointState, "joint_states", 10)
        self._pub_clock = self.create_publisher(ClockMsg, "/clock", 10)
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        self._pub_goal = self.create_publisher(Image, "~/goal_image", latched)
        self._pub_ee = self.create_publisher(PointStamped, "~/ee_position", 10)
        self._pub_block = self.create_publisher(PointStamped, "~/block_position", 10)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(TwistStamped, p["twist_topic"], self._on_twist, reliable)
        self.create_subscription(JointTrajectory, p["trajectory_topic"], self._on_trajectory, reliable)
        self.create_service(Trigger, "~/reset", self._on_reset)

        self.reset(int(p["seed"]), str(p["task"]))
        self._timer = None
        if p["autostep"]:
            # A steady wall-clock timer: with use_sim_time a ROS-time timer would wait on the /clock we publish.
            steady = Clock(clock_type=ClockType.STEADY_TIME)
            self._timer = self.create_timer(self._servo_dt, self._servo_tick, clock=steady)
        self.get_logger().info(
            f"sim cell up: {p['image_width']}x{p['image_height']} at {p['rate_hz']} Hz, task {p['task']}, "
            f"seed {p['seed']}, sim time {'on' if self._sim_time() else 'off'}"
        )

    # ------------------------------------------------------------------ in-process API
    @property
    def sim_now(self) -> float:
        """Current sim time in seconds (monotonic across resets)."""
        return self._time_offset + self.cell.time

    def reset(self, seed: int, task: str = "reach") -> Goal:
        """New start and goal; publishes the first frame and the goal image. Commands are cleared."""
        end = self.sim_now  # sim time keeps running across resets: /clock never jumps back
        self.cell.reset(seed=seed, task=task)
        self._time_offset = end + 1.0 / self.get_parameter("rate_hz").value
        self._twist, self._twist_stamp = None, -1.0
        self._tick = 0
        goal = self.cell.goal
        assert goal is not None
        self._pub_goal.publish(self._image_msg(goal.image, self._stamp()))
        self._publish_frame()
        return goal

    def advance(self, periods: int = 1) -> None:
        """Run ``periods`` control periods of servo ticks (publishing as the timer would)."""
        for _ in range(periods * self._ticks_per_frame):
            self._servo_tick()

    def advance_ticks(self, ticks: int = 1) -> None:
        """Run ``ticks`` servo ticks, a fraction of a period (a lockstep harness aligns the planner's phase)."""
        for _ in range(ticks):
            self._servo_tick()

    @property
    def ticks_per_frame(self) -> int:
        return self._ticks_per_frame

    # ------------------------------------------------------------------ time
    def _sim_time(self) -> bool:
        return bool(self.get_parameter("use_sim_time").value)

    def _now(self) -> float:
        if self._sim_time():
            return self.sim_now
        return self.get_clock().now().nanoseconds * 1e-9

    def _stamp(self):
        return _time_msg(self._now())

    # ------------------------------------------------------------------ commands
    def _on_twist(self, msg: TwistStamped) -> None:
        self.commands_received += 1
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if msg.header.frame_id not in ACCEPTED_TWIST_FRAMES:
            self.get_logger().warning(f"twist in frame {msg.header.frame_id!r} ignored; use base_link",
                                      throttle_duration_sec=2.0)
            return
        if self._now() - stamp >= self._timeout:
            self.stale_commands += 1
            self.get_logger().warning(f"stale twist ({self._now() - stamp:.3f} s old) dropped",
                                      throttle_duration_sec=2.0)
            return
        lin = msg.twist.linear
        self._twist = np.array([lin.x, lin.y, lin.z], dtype=np.float64)
        self._twist_stamp = stamp
        self.cell.apply_twist(*self._twist)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        self.commands_received += 1
        if not msg.points:
            # As Jazzy's JTC (validate_trajectory_msg): rejected, the active trajectory goes on. It is not a stop.
            self.rejected_trajectories += 1
            self.get_logger().error("Empty trajectory received.", throttle_duration_sec=2.0)
            return
        self._twist = None  # the trajectory interface takes over
        names = list(msg.joint_names)
        unknown = [n for n in names if n not in self.cell.joint_names]
        if unknown or any(len(pt.positions) != len(names) for pt in msg.points):
            self.get_logger().error(f"trajectory rejected: unknown joints {unknown} or positions/joint_names mismatch")
            self.rejected_trajectories += 1
            return
        current = self.cell.joint_positions()
        positions, times = [], []
        for pt in msg.points:
            q = current.copy()
            for n, v in zip(names, pt.positions):
                q[self.cell.joint_names.index(n)] = v
            positions.append(q)
            times.append(pt.time_from_start.sec + pt.time_from_start.nanosec * 1e-9)
        try:
            self.cell.apply_joint_trajectory(positions, times)
        except ValueError as e:
            self.get_logger().error(f"trajectory rejected: {e}")

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            seed, task = int(self.get_parameter("seed").value), str(self.get_parameter("task").value)
            goal = self.reset(seed, task)
        except (ValueError, RuntimeError) as e:
            response.success, response.message = False, str(e)
            return response
        response.success = True
        response.message = json.dumps({
            "seed": seed, "task": task, "goal_ee_position": goal.ee_position.round(4).tolist(),
            "goal_block_position": goal.block_position.round(4).tolist(),
        })
        return response

    # ------------------------------------------------------------------ the loop
    def _servo_tick(self) -> None:
        if self._twist is not None and self._now() - self._twist_stamp >= self._timeout:
            self._twist = None
            self.cell.stop()  # no fresh command: halt, as Servo does
        self.cell.step(self._servo_dt)
        self._tick += 1
        self._pub_clock.publish(ClockMsg(clock=_time_msg(self.sim_now)))
        if self._tick % self._ticks_per_frame == 0:
            self._publish_frame()

    def _image_msg(self, rgb: np.ndarray, stamp) -> Image:
        msg = Image()
        msg.header.stamp, msg.header.frame_id = stamp, self._frame_id
        msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
        msg.encoding, msg.is_bigendian, msg.step = "rgb8", 0, int(rgb.shape[1]) * 3
        msg.data = np.ascontiguousarray(rgb).tobytes()
        return msg

    def _publish_frame(self) -> None:
        stamp = self._stamp()
        self._pub_image.publish(self._image_msg(self.cell.render(), stamp))
        info = CameraInfo()
        info.header.stamp, info.header.frame_id = stamp, self._frame_id
        info.height, info.width = self.cell.config.image_height, self.cell.config.image_width
        k = self.cell.camera_intrinsics()
        info.distortion_model, info.d = "plumb_bob", [0.0] * 5
        info.k = k.reshape(-1).tolist()
        info.r = np.eye(3).reshape(-1).tolist()
        info.p = np.hstack([k, np.zeros((3, 1))]).reshape(-1).tolist()
        self._pub_info.publish(info)
        js = JointState()
        js.header.stamp = stamp
        js.name = self.cell.joint_names
        js.position = self.cell.joint_positions().tolist()
        js.velocity = self.cell.joint_velocities().tolist()
        self._pub_joints.publish(js)
        for pub, pos in ((self._pub_ee, self.cell.ee_position()), (self._pub_block, self.cell.block_position())):
            pt = PointStamped()
            pt.header.stamp, pt.header.frame_id = stamp, "base_link"
            pt.point.x, pt.point.y, pt.point.z = (float(v) for v in pos)
            pub.publish(pt)

    def destroy_node(self) -> None:
        self.cell.close()
        super().destroy_node()


def main(args=None) -> int:
    """Console entry point: spin until ^C / SIGTERM. The context stays up until the timer has stopped (with
    rclpy's own handler a servo tick could publish into a shut-down context and raise out of spin)."""
    return spin_until_signal(SimCellNode, args)


if __name__ == "__main__":
    main()
