"""`planner_node`: a managed (lifecycle) node — camera in, world-model planning, arm commands out.

Thin over the core: PlannerNodeConfig (parameters), SafetySupervisor (when to command), PlanningEngine
(encode / plan / surprise) and conversions (messages <-> arrays). This module only wires ROS to them.

Lifecycle: configure loads the checkpoint + backend and validates it against output_mode (FAILURE with a
logged reason on any mismatch); activate starts the control timer; deactivate publishes one zero command;
cleanup / shutdown release the model. /diagnostics is published at diagnostics_rate_hz in every state.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import List, Optional

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher, State, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Float32, Float32MultiArray, MultiArrayDimension, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ami_world_model import safety
from ami_world_model.config import ConfigError
from ami_world_model.node_config import PlannerNodeConfig, resolve_checkpoint
from ami_world_model.ros import conversions
from ami_world_model.ros.params import declare_parameters, install_validation, read_config

SENSOR_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT,
                        durability=DurabilityPolicy.VOLATILE)  # qos_profile_sensor_data with depth 1
LATCHED_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)  # goal, e-stop, safety state
COMMAND_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)  # Servo / JTC subscribe reliable
SERVO_TWIST = 1  # moveit_msgs/srv/ServoCommandType.TWIST


def package_share_dir() -> Optional[Path]:
    """share/ami_world_model of a colcon install, or None (pip / editable install)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("ami_world_model"))
    except Exception:  # noqa: BLE001 - not installed through ament: fall back to the repo
        return None


class PlannerNode(LifecycleNode):
    """The planner node (see the module docstring)."""

    def __init__(self, node_name: str = "planner_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._guard_change_state_service()
        declare_parameters(self)
        install_validation(self)  # after declaring: overrides were checked by from_params at configure
        # Callbacks may run on a MultiThreadedExecutor (a user's component container): one lock guards the state.
        self._lock = threading.RLock()
        self._lc_state = "unconfigured"
        self._active = False
        self.cfg: Optional[PlannerNodeConfig] = None
        self.engine = None
        self.sup: Optional[safety.SafetySupervisor] = None
        self._entities: list = []  # subscriptions, services, timers created at configure
        self._pubs: list = []
        self._control_timer = None
        self._debug_timer = None
        self._frame: Optional[np.ndarray] = None  # newest model input [3, H, W]
        self._frame_seq = 0
        self._frame_stamp = None
        self.planned_frame_stamp = None  # camera stamp of the frame the newest command was planned from
        self._planned_seq = 0
        self._joints: Optional[List[float]] = None
        self._joint_names: List[str] = []
        self._prev_cmd: List[float] = []
        self._stop_reason = "unconfigured"
        self._last_step = None
        self._servo_hint_logged = False
        self._rate = {k: safety.RateMeter() for k in ("image", "joint_state", "command")}
        self._rejected = {"image": 0, "joint_state": 0, "goal": 0}
        self._commands_sent = 0
        self._zeros_sent = 0
        self._latency = {"convert_ms": 0.0, "encode_ms": 0.0, "plan_ms": 0.0}
        self._throttle = safety.Throttle(2.0)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        rate = float(self.get_parameter("diagnostics_rate_hz").value)
        self._diag_timer = self.create_timer(1.0 / max(rate, 0.1), self._publish_diagnostics)

    def _guard_change_state_service(self) -> None:
        """rclpy raises inside ~/change_state for a transition invalid in the current state (e.g. activate
        twice), which kills the executor's spin: answer success=False instead and keep running."""
        srv = getattr(self, "_service_change_state", None)
        if srv is None:
            return
        inner = srv.callback

        def guarded(req, resp):
            try:
                return inner(req, resp)
            except Exception as exc:  # noqa: BLE001 - a bad request must not take the node down
                self.get_logger().warning(f"refused lifecycle transition {req.transition.id}: {exc}")
                resp.success = False
                return resp

        srv.callback = guarded

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            cfg = read_config(self)
            self._throttle = safety.Throttle(cfg.log_throttle_s)
            path = resolve_checkpoint(cfg.checkpoint, package_share_dir())
            from ami_world_model.ros.engine import PlanningEngine  # torch import: only when configuring

            engine = PlanningEngine(cfg, path)
            try:
                engine.warm_up()
                self._joint_names = engine.validate_output(cfg.output_mode, cfg.joint_names)
                wanted = list(engine.wm_config.state.names)
                if engine.uses_state and self._joint_names and self._joint_names != wanted:
                    # one joint-state vector feeds both; supporting two would need two lookups per message
                    raise ConfigError(f"the model's state joints {wanted} differ from the commanded joints "
                                      f"{self._joint_names}; this node needs them equal")
            except Exception:
                engine.close()
                raise
        except Exception as exc:  # noqa: BLE001 - any failure must fail the transition, not the process
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            self._stop_reason = f"configure failed: {exc}"
            return TransitionCallbackReturn.FAILURE
        if engine.surprise_scale_source.startswith("checkpoint") and cfg.goal_energy_threshold >= engine.surprise_scale:
            self.get_logger().warning(
                f"goal_energy_threshold {cfg.goal_energy_threshold:g} is not below this model's one-step latent "
                f"change {engine.surprise_scale:.4g} (metrics['val_one_step_l1']): 'goal reached' may fire a "
                "whole control step away from the goal")
        with self._lock:
            self.cfg, self.engine = cfg, engine
            need_joints = cfg.require_joint_states or cfg.output_mode == "joint_trajectory" or engine.uses_state
            self.sup = safety.SafetySupervisor(safety.SupervisorConfig(
                max_image_age_s=cfg.max_image_age_s, max_joint_state_age_s=cfg.max_joint_state_age_s,
                require_joint_states=need_joints, goal_energy_threshold=cfg.goal_energy_threshold,
                goal_reached_ticks=cfg.goal_reached_ticks, surprise_ratio_threshold=cfg.surprise_ratio_threshold,
                surprise_ticks=cfg.surprise_ticks, no_progress_ticks=cfg.no_progress_ticks,
                no_progress_margin=cfg.no_progress_margin), enabled=cfg.start_enabled)
            self.limits = safety.SafetyLimits(engine.velocity_limits(), engine.accel_limits())
            self._prev_cmd = [0.0] * engine.action_dim
            self._create_interfaces(cfg)
            self._stop_reason = "inactive"
            self._lc_state = "inactive"
        ticks_per_step = engine.spec.dt_s / cfg.control_period_s
        if abs(ticks_per_step - engine.skip) > 0.01 * ticks_per_step:
            self.get_logger().warning(
                f"the model's step ({engine.spec.dt_s:.3f} s) is not a whole number of control periods "
                f"({cfg.control_period_s:.3f} s): predictions (and surprise) take it as {engine.skip} period(s)")
        self.get_logger().info(
            f"configured: checkpoint {path}, backend {getattr(engine.backend, 'name', '?')}, "
            f"output {cfg.output_mode}, actions {engine.spec.kind} {engine.spec.names} (model step: {engine.skip} "
            f"control period(s)), surprise scale "
            f"{engine.surprise_scale:.4g} ({engine.surprise_scale_source})")
        return TransitionCallbackReturn.SUCCESS

    def _create_interfaces(self, cfg: PlannerNodeConfig) -> None:
        if cfg.output_mode == "servo_twist":
            self._cmd_pub = self.create_lifecycle_publisher(TwistStamped, cfg.twist_topic, COMMAND_QOS)
        else:
            self._cmd_pub = self.create_lifecycle_publisher(JointTrajectory, cfg.trajectory_topic, COMMAND_QOS)
        self._energy_pub = self.create_lifecycle_publisher(Float32, "~/energy", 10)
        self._plan_pub = self.create_lifecycle_publisher(Float32MultiArray, "~/planned_actions", 10)
        self._debug_pub = self.create_lifecycle_publisher(Image, "~/debug_image", 1)
        # Plain publishers: the safety state must be visible while inactive too.
        self._safety_pub = self.create_publisher(String, "~/safety_state", LATCHED_QOS)
        self._goal_reached_pub = self.create_publisher(Bool, "~/goal_reached", LATCHED_QOS)
        self._pubs = [self._cmd_pub, self._energy_pub, self._plan_pub, self._debug_pub, self._safety_pub,
                      self._goal_reached_pub]
        e = self._entities
        e.append(self.create_subscription(Image, cfg.camera_topic, self._on_image, SENSOR_QOS))
        if cfg.compressed_camera_topic:
            e.append(self.create_subscription(CompressedImage, cfg.compressed_camera_topic,
                                              self._on_compressed, SENSOR_QOS))
        e.append(self.create_subscription(JointState, cfg.joint_state_topic, self._on_joint_state, SENSOR_QOS))
        e.append(self.create_subscription(Image, cfg.goal_topic, self._on_goal, LATCHED_QOS))
        e.append(self.create_subscription(Bool, cfg.estop_topic, self._on_estop, LATCHED_QOS))
        e.append(self.create_service(Trigger, "~/set_goal_from_current", self._srv_goal_from_current))
        e.append(self.create_service(Trigger, "~/clear_goal", self._srv_clear_goal))
        e.append(self.create_service(SetBool, "~/enable", self._srv_enable))

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        ret = super().on_activate(state)  # enables the lifecycle publishers
        with self._lock:
            self._active = True
            self._lc_state = "active"
            self.sup.set_enabled(self.cfg.start_enabled)
            self._control_timer = self.create_timer(self.cfg.control_period_s, self._tick)
            if self.cfg.debug_image_rate_hz > 0:
                self._debug_timer = self.create_timer(1.0 / self.cfg.debug_image_rate_hz, self._publish_debug)
        if self.cfg.output_mode == "servo_twist":
            self._switch_servo_to_twist()
        return ret

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        with self._lock:
            self._active = False
            self._lc_state = "inactive"
            self._stop_timers()
            self._publish_zero("deactivated", force=True)  # ONE zero, while the publisher is still active
            self.engine.reset()
        self.get_logger().info("deactivated: one zero command sent, commanding stopped")
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._release()
        self._lc_state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        if self._active:
            with self._lock:
                self._publish_zero("shutdown", force=True)
        self._release()
        self._lc_state = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        self._release()
        self._lc_state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def _stop_timers(self) -> None:
        for t in (self._control_timer, self._debug_timer):
            if t is not None:
                self.destroy_timer(t)
        self._control_timer = self._debug_timer = None

    def _release(self) -> None:
        with self._lock:
            self._active = False
            self._stop_timers()
            for ent in self._entities:
                destroy = {"Subscription": self.destroy_subscription, "Service": self.destroy_service}
                destroy.get(type(ent).__name__, lambda x: None)(ent)
            for pub in self._pubs:
                if isinstance(pub, LifecyclePublisher):
                    self.destroy_lifecycle_publisher(pub)
                else:
                    self.destroy_publisher(pub)
            self._entities, self._pubs = [], []
            if self.engine is not None:
                self.engine.close()
            self.engine, self.sup, self.cfg = None, None, None
            self._frame = None
            self._stop_reason = "unconfigured"

    def stop_for_exit(self, timeout_s: float = 1.0) -> None:
        """Before exiting: an active node deactivates (ONE zero command), then gives reliable subscribers
        (Servo, the JTC) time to acknowledge that zero."""
        if not (self._active and rclpy.ok()):
            return
        self.trigger_deactivate()
        pub = getattr(self, "_cmd_pub", None)
        if pub is not None and pub in self._pubs:
            from rclpy.duration import Duration as RclDuration

            pub.wait_for_all_acked(RclDuration(seconds=timeout_s))

    # ------------------------------------------------------------------ inputs
    def _now(self) -> float:
        return time.monotonic()  # watchdog ages: receive time on a monotonic clock (sim time may pause)

    def _reject(self, kind: str, exc: Exception) -> None:
        self._rejected[kind] += 1
        if self._throttle.ready(kind, self._now()):
            self.get_logger().warning(f"rejected {kind} ({self._rejected[kind]} so far): {exc}")

    def _on_image(self, msg: Image) -> None:
        if not self._active:
            return  # rclpy has no lifecycle subscriptions: gate on the state ourselves
        t0 = time.perf_counter()
        try:
            h, w = self.engine.image_hw
            frame = conversions.image_msg_to_input(msg, h, w)
        except Exception as exc:  # noqa: BLE001 - bad input never stops the node
            self._reject("image", exc)
            return
        self._store_frame(frame, t0, msg.header.stamp)

    def _on_compressed(self, msg: CompressedImage) -> None:
        if not self._active:
            return
        t0 = time.perf_counter()
        try:
            h, w = self.engine.image_hw
            frame = conversions.compressed_msg_to_input(msg, h, w)
        except Exception as exc:  # noqa: BLE001
            self._reject("image", exc)
            return
        self._store_frame(frame, t0, msg.header.stamp)

    def _store_frame(self, frame: np.ndarray, t0: float, stamp=None) -> None:
        now = self._now()
        with self._lock:
            if self.sup is None:
                return
            self._latency["convert_ms"] = (time.perf_counter() - t0) * 1e3
            self._frame = frame
            self._frame_stamp = stamp  # the camera's stamp, kept with the frame (latency measurements)
            self._frame_seq += 1
            self._rate["image"].tick(now)
            self.sup.image_received(now)

    def _on_joint_state(self, msg: JointState) -> None:
        if not self._active:
            return
        with self._lock:
            if self.engine is None:
                return
            required = self._joint_names or list(self.engine.wm_config.state.names)
            try:
                positions = safety.check_joint_positions(list(msg.name), list(msg.position), required)
            except safety.InputError as exc:
                self._reject("joint_state", exc)
                return
            now = self._now()
            self._joints = positions
            self._rate["joint_state"].tick(now)
            self.sup.joints_received(now)

    def _on_goal(self, msg: Image) -> None:
        with self._lock:
            if self.engine is None:
                return
            try:
                h, w = self.engine.image_hw
                goal = conversions.image_msg_to_input(msg, h, w)
            except Exception as exc:  # noqa: BLE001
                self._reject("goal", exc)
                return
            self._set_goal(goal)
        self.get_logger().info("new goal image received")

    def _set_goal(self, goal: np.ndarray) -> None:
        self.engine.set_goal(goal)
        self.sup.set_goal(True)
        self._prev_cmd = [0.0] * self.engine.action_dim
        self._publish_safety_state(force=True)

    def _on_estop(self, msg: Bool) -> None:
        with self._lock:
            if self.sup is None:
                return
            self.sup.set_estop(bool(msg.data))
            if msg.data:  # stop now, not at the next tick
                self._apply_stop(self.sup.stop(safety.ESTOP))
        self.get_logger().warning(f"e-stop {'ENGAGED' if msg.data else 'released'}")

    def _srv_enable(self, req: SetBool.Request, resp: SetBool.Response) -> SetBool.Response:
        with self._lock:
            if self.sup is None:
                resp.success, resp.message = False, "not configured"
                return resp
            self.sup.set_enabled(bool(req.data))
            if not req.data:
                self._apply_stop(self.sup.stop(safety.DISABLED))
            resp.success, resp.message = True, "enabled" if req.data else "disabled"
        return resp

    def _srv_goal_from_current(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        with self._lock:
            fresh = self.sup is not None and self.sup.last_image_s is not None and \
                self._now() - self.sup.last_image_s <= self.cfg.max_image_age_s
            if not fresh or self._frame is None:
                resp.success, resp.message = False, "no fresh camera frame to use as the goal"
                return resp
            self._set_goal(self._frame)
            resp.success, resp.message = True, "goal set from the current frame"
        return resp

    def _srv_clear_goal(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        with self._lock:
            if self.engine is None:
                resp.success, resp.message = False, "not configured"
                return resp
            self.engine.clear_goal()
            self.sup.set_goal(False)
            self._apply_stop(self.sup.stop(safety.NO_GOAL))
            resp.success, resp.message = True, "goal cleared"
        return resp

    # ------------------------------------------------------------------ control
    def _tick(self) -> None:
        with self._lock:
            if not self._active or self.sup is None:
                return
            decision = self.sup.decide(self._now())
            if decision.action != safety.PLAN:
                self._apply_stop(decision)
                return
            if self._frame_seq == self._planned_seq:
                return  # no new frame since the last plan: nothing new to act on (watchdog covers stale)
            self._planned_seq = self._frame_seq
            self.planned_frame_stamp = self._frame_stamp
            deadline = self.cfg.control_period_s * self.cfg.planner_deadline_fraction
            try:
                step = self.engine.step(self._frame, self._joints, deadline)
            except Exception as exc:  # noqa: BLE001 - a model failure stops the arm, not the node
                self._reject("image", exc)
                self._apply_stop(self.sup.stop("model_error"))
                return
            self._last_step = step
            self._latency["encode_ms"], self._latency["plan_ms"] = step.encode_s * 1e3, step.plan_s * 1e3
            self._publish_plan(step)
            after = self.sup.after_plan(step.current_energy, step.planned_energy, step.do_nothing_energy,
                                        step.surprise_ratio)
            if after.action != safety.PLAN:
                self._apply_stop(after)
                return
            cmd = safety.clamp_command(step.action, self._prev_cmd, self.cfg.control_period_s, self.limits)
            if self._publish_command(cmd):
                self.engine.record_sent(cmd)
            self._set_stop_reason("")

    def _apply_stop(self, decision: safety.Decision) -> None:
        """Publish the stop's zero (if any), forget history and warm start, report the reason."""
        if decision.action == safety.ZERO:
            self._publish_zero(decision.reason)
        if self._stop_reason != decision.reason:
            if self.engine is not None:
                self.engine.reset()  # after a pause, re-read the world before commanding again
            self._prev_cmd = [0.0] * len(self._prev_cmd)
        self._set_stop_reason(decision.reason)

    def _set_stop_reason(self, reason: str) -> None:
        changed = reason != self._stop_reason
        self._stop_reason = reason
        if changed:
            if reason and self._throttle.ready("stop:" + reason, self._now()):
                self.get_logger().info(f"not commanding: {reason}")
            self._publish_safety_state(force=True)

    def _publish_command(self, v: List[float], zero: bool = False) -> bool:
        """Publish one command of the configured type; False when it cannot be formed (no joint state)."""
        cfg = self.cfg
        if cfg.output_mode == "servo_twist":
            msg = TwistStamped()
            msg.header.frame_id = cfg.twist_frame_id
            for name, x in zip(self.engine.spec.names, v):
                group, axis = name.split(".")
                setattr(getattr(msg.twist, group), axis, float(x))
            msg.header.stamp = self.get_clock().now().to_msg()  # Servo drops stale stamps: stamp last
        else:
            if self._joints is None:
                return False
            msg = JointTrajectory()
            msg.joint_names = list(self._joint_names)
            period = cfg.control_period_s
            point = JointTrajectoryPoint()
            # positions only (velocities empty): JTC rejects non-zero end velocity by default
            point.positions = [float(p + x * period) for p, x in zip(self._joints, v)]
            point.time_from_start = Duration(sec=int(period), nanosec=int((period % 1.0) * 1e9))
            msg.points = [point]
        self._cmd_pub.publish(msg)
        self.sup.commanded(not zero)  # any planned command (even all-zero values) earns a stop zero later
        self._prev_cmd = list(v)
        self._commands_sent += 1
        self._rate["command"].tick(self._now())
        return True

    def _publish_zero(self, reason: str, force: bool = False) -> None:
        """One stop command: zero twist, or hold the current joint positions (empty trajectory if unknown)."""
        if self.cfg is None or (not self._active and not force):
            return
        n = self.engine.action_dim if self.engine is not None else 0
        if self.cfg.output_mode == "joint_trajectory" and self._joints is None:
            msg = JointTrajectory()  # an empty trajectory makes the JTC stop its active goal
            msg.joint_names = list(self._joint_names)
            self._cmd_pub.publish(msg)
            self.sup.commanded(False)
            self._prev_cmd = [0.0] * n
        else:
            self._publish_command([0.0] * n, zero=True)
        self._zeros_sent += 1

    def _switch_servo_to_twist(self) -> None:
        try:
            from moveit_msgs.srv import ServoCommandType  # type: ignore
        except ImportError:
            if not self._servo_hint_logged:
                self._servo_hint_logged = True
                self.get_logger().info(
                    "moveit_msgs is not importable, so Servo's command type cannot be set from here; run once: "
                    f"ros2 service call {self.cfg.servo_switch_service} moveit_msgs/srv/ServoCommandType "
                    "'{command_type: 1}'")
            return
        client = self.create_client(ServoCommandType, self.cfg.servo_switch_service)
        if client.service_is_ready():
            client.call_async(ServoCommandType.Request(command_type=SERVO_TWIST))
        else:
            self.get_logger().warning(f"{self.cfg.servo_switch_service} is not available; Servo may ignore twists")

    # ------------------------------------------------------------------ observability
    def _publish_plan(self, step) -> None:
        self._energy_pub.publish(Float32(data=float(step.current_energy)))
        msg = Float32MultiArray()
        h, a = step.actions.shape
        msg.layout.dim = [MultiArrayDimension(label="horizon", size=h, stride=h * a),
                          MultiArrayDimension(label="action", size=a, stride=a)]
        msg.data = [float(x) for x in step.actions.reshape(-1)]
        self._plan_pub.publish(msg)

    def _publish_safety_state(self, force: bool = False) -> None:
        if not self._pubs:
            return
        self._safety_pub.publish(String(data=self._stop_reason or "commanding"))
        # the latch, not the current reason: a goal stays reached while e.g. the camera drops out
        reached = self.sup is not None and self.sup.latched == safety.GOAL_REACHED
        self._goal_reached_pub.publish(Bool(data=reached))

    def _publish_debug(self) -> None:
        with self._lock:
            if not self._active or self._frame is None:
                return
            cur = conversions.input_to_rgb8(self._frame)
            goal = self.engine.goal_image
            right = conversions.input_to_rgb8(goal) if goal is not None else np.zeros_like(cur)
            msg = conversions.rgb_to_image_msg(np.concatenate([cur, right], axis=1), Image,
                                               self.get_clock().now().to_msg(), "debug")
            self._debug_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        with self._lock:
            now = self._now()
            sup, step, eng = self.sup, self._last_step, self.engine
            reason = self._stop_reason
            if self._lc_state == "unconfigured" or reason.startswith("configure failed"):
                level = DiagnosticStatus.WARN if not reason.startswith("configure failed") else DiagnosticStatus.ERROR
            elif reason in (safety.ESTOP, safety.STALE_IMAGE, safety.STALE_JOINTS, safety.UNSURE_SURPRISE,
                            safety.UNSURE_NO_PROGRESS, "model_error"):
                level = DiagnosticStatus.WARN
            else:
                level = DiagnosticStatus.OK
            age = (now - sup.last_image_s) if sup is not None and sup.last_image_s is not None else float("inf")
            values = {
                "lifecycle_state": self._lc_state,
                "safety_state": reason or "commanding",
                "backend": getattr(eng.backend, "name", "?") if eng is not None else "none",
                "image_rate_hz": f"{self._rate['image'].current(now):.2f}",
                "images_received": str(self._rate["image"].count),
                "joint_state_rate_hz": f"{self._rate['joint_state'].current(now):.2f}",
                "image_age_s": f"{age:.3f}",
                "convert_ms": f"{self._latency['convert_ms']:.2f}",
                "encode_ms": f"{self._latency['encode_ms']:.2f}",
                "plan_ms": f"{self._latency['plan_ms']:.2f}",
                "energy": f"{step.current_energy:.4f}" if step else "nan",
                "planned_energy": f"{step.planned_energy:.4f}" if step else "nan",
                "do_nothing_energy": f"{step.do_nothing_energy:.4f}" if step else "nan",
                "surprise_ratio": f"{step.surprise_ratio:.3f}" if step and step.surprise_ratio is not None else "nan",
                "plan_iterations": str(step.iterations) if step else "0",
                "command_rate_hz": f"{self._rate['command'].current(now):.2f}",
                "commands_sent": str(self._commands_sent),
                "zero_commands_sent": str(self._zeros_sent),
                "has_goal": str(bool(sup and sup.has_goal)),
                "enabled": str(bool(sup and sup.enabled)),
                "estop": str(bool(sup and sup.estop)),
            }
            values.update({f"rejected_{k}": str(v) for k, v in self._rejected.items()})
            if sup is not None:
                values.update({k: str(v) for k, v in sup.counters.items()})
                values.update({f"stops_{k}": str(v) for k, v in sup.stops.items()})
            status = DiagnosticStatus(level=level, name=f"{self.get_name()}: planner",
                                      hardware_id=self.get_fully_qualified_name(),
                                      message=f"{self._lc_state}: {reason or 'commanding'}",
                                      values=[KeyValue(key=k, value=v) for k, v in values.items()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(arr)


def init_keeping_context(args: Optional[List[str]] = None) -> threading.Event:
    """``rclpy.init`` with our SIGINT/SIGTERM handlers instead of rclpy's; returns the event they set.

    rclpy's own handler would shut the context down before an active planner could send its stop zero; ours
    leave the context up, so the caller can ``stop_for_exit`` first. They only set the event, which the caller's
    spin loop checks: an exception raised from a handler lands wherever the main thread happens to be, and
    inside rclpy's C++ message conversion it surfaced as a RuntimeError ("Unable to convert call argument")
    rather than KeyboardInterrupt. A second signal raises KeyboardInterrupt, for a shutdown that hangs.
    """
    import signal

    from rclpy.signals import SignalHandlerOptions

    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def main(args: Optional[List[str]] = None) -> int:
    """Console entry point: spin the (unconfigured) lifecycle node until ^C / SIGTERM, then stop safely."""
    stop = init_keeping_context(args)
    node = PlannerNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.1)  # the timeout bounds how long a signal waits to be seen
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop_for_exit()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    main()
