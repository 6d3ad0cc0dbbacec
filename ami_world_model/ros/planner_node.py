"""`planner_node`: a managed (lifecycle) node — camera in, world-model planning, arm commands out.

Thin over the core: PlannerNodeConfig (parameters), Commander (inputs, safety, commands, status; in
``control/commander.py``) over a PlanningEngine, and conversions (messages <-> arrays). This module only
wires ROS to them: callbacks, QoS, messages.

Lifecycle: configure loads the checkpoint + backend and validates it against output_mode (FAILURE with a
logged reason on any mismatch); activate starts the control timer; deactivate publishes one stop command;
cleanup / shutdown release the model. /diagnostics is published at diagnostics_rate_hz in every state;
``~/status`` (std_msgs/String, JSON) on every tick, frame, goal and state change (docs/PARAMETERS.md).
"""
from __future__ import annotations

import json
import threading
import time
from typing import List, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher, State, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Float32, Float32MultiArray, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from ami_world_model.control.commander import Command, Commander
from ami_world_model.node_config import PlannerNodeConfig, resolve_checkpoint
from ami_world_model.ros import conversions, messages
from ami_world_model.ros.lifecycle_util import (
    guard_change_state,
    init_keeping_context,
    package_share_dir,
    spin_until_signal,
)
from ami_world_model.ros.params import declare_parameters, install_validation, read_config
from ami_world_model.ros.servo import ServoTwistSwitch
from ami_world_model.safety import StopReason

__all__ = ["PlannerNode", "init_keeping_context", "main", "package_share_dir"]

SENSOR_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT,
                        durability=DurabilityPolicy.VOLATILE)  # qos_profile_sensor_data with depth 1
LATCHED_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)  # goal, e-stop, safety state
COMMAND_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)  # Servo / JTC subscribe reliable
ESTOP_QOS = COMMAND_QOS  # reliable + volatile: accepts volatile and transient-local publishers
STATUS_QOS = COMMAND_QOS  # every status counts for a client matching commands to frames


def _ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class PlannerNode(LifecycleNode):
    """The planner node (see the module docstring)."""

    def __init__(self, node_name: str = "planner_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        guard_change_state(self)
        declare_parameters(self)
        # after declaring: overrides were checked by from_params at configure
        install_validation(self, lambda: self.core is not None, self._apply_live)
        # Callbacks may run on a MultiThreadedExecutor (a user's component container): one lock guards the state.
        self._lock = threading.RLock()
        self._lifecycle = "unconfigured"
        self._no_core_reason = StopReason.UNCONFIGURED  # the reported reason while there is no Commander
        self._detail = ""  # why configure failed
        self.cfg: Optional[PlannerNodeConfig] = None
        self.core: Optional[Commander] = None
        self._entities: list = []  # subscriptions, services, timers created at configure
        self._pubs: list = []
        self._control_timers: list = []
        self._servo: Optional[ServoTwistSwitch] = None
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._status_pub = self.create_publisher(String, "~/status", STATUS_QOS)
        rate = float(self.get_parameter("diagnostics_rate_hz").value)
        self._diag_timer = self.create_timer(1.0 / max(rate, 0.1), self._publish_diagnostics)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            cfg = read_config(self)
            path = resolve_checkpoint(cfg.checkpoint, package_share_dir())
            from ami_world_model.control.engine import open_engine  # torch import: only when configuring

            engine, joint_names, warnings = open_engine(cfg, path)
        except Exception as exc:  # noqa: BLE001 - any failure must fail the transition, not the process
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            self._no_core_reason, self._detail = StopReason.CONFIGURE_FAILED, f"{type(exc).__name__}: {exc}"
            self._publish_state()
            return TransitionCallbackReturn.FAILURE
        for w in warnings:
            self.get_logger().warning(w)
        with self._lock:
            self.cfg, self._detail, self._lifecycle = cfg, "", "inactive"
            self.core = Commander(cfg, engine, joint_names, lambda: self.get_clock().now().nanoseconds,
                                  log=self._log, on_change=self._publish_state)
            self._create_interfaces(cfg)
        self._publish_state()
        self.get_logger().info(
            f"configured: checkpoint {path}, backend {getattr(engine.backend, 'name', '?')}, "
            f"output {cfg.output_mode}, actions {engine.spec.kind} {engine.spec.names} (model step: {engine.skip} "
            f"control period(s)), surprise scale {engine.surprise_scale:.4g} ({engine.surprise_scale_source})")
        return TransitionCallbackReturn.SUCCESS

    def _log(self, level: str, msg: str) -> None:
        # one call site per severity: rclpy's logger refuses a changing severity at one site
        if level == "info":
            self.get_logger().info(msg)
        else:
            self.get_logger().warning(msg)

    def _qos_mismatch(self, what: str, topic: str, event) -> None:
        hint = {"goal": f"publish it latched: ros2 topic pub --once --qos-durability transient_local "
                        f"--qos-reliability reliable {topic} sensor_msgs/msg/Image ...",
                "e-stop": "publish it reliable (ros2 topic pub's default); a best-effort e-stop is not accepted"}
        self.get_logger().error(f"a {what} publisher on {topic} offers an incompatible QoS (policy "
                                f"{event.last_policy_kind}); its messages do not arrive. {hint[what]}")

    def _apply_live(self, cfg: PlannerNodeConfig) -> None:
        with self._lock:
            self.cfg = cfg
            self.core.apply_live(cfg)
        self.get_logger().info("live parameters applied")

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
        sub = self.create_subscription
        e = self._entities
        e.append(sub(Image, cfg.camera_topic, self._on_image, SENSOR_QOS))
        if cfg.compressed_camera_topic:
            e.append(sub(CompressedImage, cfg.compressed_camera_topic, self._on_compressed, SENSOR_QOS))
        e.append(sub(JointState, cfg.joint_state_topic, self._on_joint_state, SENSOR_QOS))
        e.append(sub(Image, cfg.goal_topic, self._on_goal, LATCHED_QOS, event_callbacks=SubscriptionEventCallbacks(
            incompatible_qos=lambda ev: self._qos_mismatch("goal", cfg.goal_topic, ev))))
        # E-stop from ANY publisher: a VOLATILE reliable subscription connects to volatile publishers (`ros2 topic
        # pub`, PLC/IO bridges) and to latched ones; a second, TRANSIENT_LOCAL one also receives what a latched
        # publisher sent before this node subscribed (it cannot match volatile publishers: that is expected).
        e.append(sub(Bool, cfg.estop_topic, self._on_estop, ESTOP_QOS, event_callbacks=SubscriptionEventCallbacks(
            incompatible_qos=lambda ev: self._qos_mismatch("e-stop", cfg.estop_topic, ev))))
        e.append(sub(Bool, cfg.estop_topic, self._on_estop, LATCHED_QOS,
                     event_callbacks=SubscriptionEventCallbacks(incompatible_qos=lambda ev: None)))
        e.append(self.create_service(Trigger, "~/set_goal_from_current", self._srv_goal_from_current))
        e.append(self.create_service(Trigger, "~/clear_goal", self._srv_clear_goal))
        e.append(self.create_service(SetBool, "~/enable", self._srv_enable))
        if cfg.output_mode == "servo_twist" and self._servo is None:  # one client for the node's life
            self._servo = ServoTwistSwitch(self, cfg.servo_switch_service)

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        ret = super().on_activate(state)  # enables the lifecycle publishers
        with self._lock:
            self._lifecycle = "active"
            self.core.activate()
            self._control_timers = [self.create_timer(self.cfg.control_period_s, self._tick)]
            if self.cfg.debug_image_rate_hz > 0:
                self._control_timers.append(self.create_timer(1.0 / self.cfg.debug_image_rate_hz, self._publish_debug))
        self._publish_state()
        if self._servo is not None:
            self._servo.start()
        return ret

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        with self._lock:
            self._lifecycle = "inactive"
            self._stop_timers()
            if self._servo is not None:
                self._servo.stop()
            self._publish(self.core.deactivate())  # ONE stop, while the publisher is still active
        self.get_logger().info("deactivated: one stop command sent, commanding stopped")
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._release("unconfigured")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        with self._lock:
            if self.core is not None and self.core.active:
                self._publish(self.core.deactivate())
        self._release("finalized")
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        self._release("unconfigured")
        return TransitionCallbackReturn.SUCCESS

    def _stop_timers(self) -> None:
        for t in self._control_timers:
            self.destroy_timer(t)
        self._control_timers = []

    def _release(self, lifecycle: str) -> None:
        with self._lock:
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
            if self.core is not None:
                self.core.engine.close()
            self.core, self.cfg = None, None
            self._lifecycle, self._no_core_reason = lifecycle, StopReason.UNCONFIGURED
        self._publish_state()

    def stop_for_exit(self, timeout_s: float = 1.0) -> None:
        """Before exiting: an active node deactivates (ONE stop command), then gives reliable subscribers
        (Servo, the JTC) time to acknowledge it."""
        if not (self._lifecycle == "active" and rclpy.ok()):
            return
        self.trigger_deactivate()
        pub = getattr(self, "_cmd_pub", None)
        if pub is not None and pub in self._pubs:
            from rclpy.duration import Duration as RclDuration

            pub.wait_for_all_acked(RclDuration(seconds=timeout_s))

    # ------------------------------------------------------------------ inputs
    def _on_image(self, msg: Image) -> None:
        self._store_frame(msg, conversions.image_msg_to_input)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._store_frame(msg, conversions.compressed_msg_to_input)

    def _store_frame(self, msg, convert) -> None:
        if self._lifecycle != "active":
            return  # rclpy has no lifecycle subscriptions: gate on the state ourselves
        t0 = time.perf_counter()
        with self._lock:
            core = self.core
            if core is None:
                return
            try:
                frame = convert(msg, *core.engine.image_hw, crop=core.engine.crop)
            except Exception as exc:  # noqa: BLE001 - bad input never stops the node
                core.reject("image", exc)
                return
            core.image(frame, _ns(msg.header.stamp), time.perf_counter() - t0)
        self._publish_status()

    def _on_joint_state(self, msg: JointState) -> None:
        if self._lifecycle != "active":
            return
        with self._lock:
            if self.core is not None:
                self.core.joint_state(msg.name, msg.position)

    def _on_goal(self, msg: Image) -> None:
        with self._lock:
            if self.core is None:
                return
            try:
                goal = conversions.image_msg_to_input(msg, *self.core.engine.image_hw, crop=self.core.engine.crop)
            except Exception as exc:  # noqa: BLE001
                self.core.reject("goal", exc)
                return
            self.core.set_goal(goal)
        self.get_logger().info("new goal image received")

    def _on_estop(self, msg: Bool) -> None:
        with self._lock:
            if self.core is None:
                return
            changed = self.core.sup.estop != bool(msg.data)  # a latched publisher's message comes twice
            self._publish(self.core.set_estop(bool(msg.data)))
        if changed:
            self.get_logger().warning(f"e-stop {'ENGAGED' if msg.data else 'released'}")

    def _srv_enable(self, req: SetBool.Request, resp: SetBool.Response) -> SetBool.Response:
        with self._lock:
            if self.core is None:
                resp.success, resp.message = False, "not configured"
                return resp
            self._publish(self.core.set_enabled(bool(req.data)))
            resp.success, resp.message = True, "enabled" if req.data else "disabled"
        return resp

    def _srv_goal_from_current(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        with self._lock:
            ok = self.core is not None and self.core.goal_from_current()
        resp.success = ok
        resp.message = "goal set from the current frame" if ok else "no fresh camera frame to use as the goal"
        return resp

    def _srv_clear_goal(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        with self._lock:
            if self.core is None:
                resp.success, resp.message = False, "not configured"
                return resp
            self._publish(self.core.clear_goal())
            resp.success, resp.message = True, "goal cleared"
        return resp

    # ------------------------------------------------------------------ control and messages
    def _tick(self) -> None:
        with self._lock:
            if self.core is None:
                return
            steps = self.core.last_step
            self._publish(self.core.tick())
            if self.core.last_step is not steps:
                self._publish_plan(self.core.last_step)
        self._publish_status()

    def _publish(self, commands: List[Command]) -> None:
        for cmd in commands:
            self._cmd_pub.publish(messages.command_msg(cmd, self.cfg, self.core.engine.spec.names,
                                                       self.core.joint_names))

    def _publish_plan(self, step) -> None:
        self._energy_pub.publish(Float32(data=float(step.current_energy)))
        self._plan_pub.publish(messages.plan_msg(step.actions))

    def _reason(self) -> Optional[StopReason]:
        return self.core.reason if self.core is not None else self._no_core_reason

    def _publish_state(self) -> None:
        """~/safety_state and ~/goal_reached (latched) and ~/status, on every state change."""
        with self._lock:
            if self._pubs:
                self._safety_pub.publish(String(data=self.core.safety_state if self.core else "unconfigured"))
                # the latch, not the current reason: a goal stays reached while e.g. the camera drops out
                reached = self.core is not None and self.core.sup.latched == StopReason.GOAL_REACHED
                self._goal_reached_pub.publish(Bool(data=reached))
        self._publish_status()

    def _publish_status(self) -> None:
        with self._lock:
            reason = self._reason()
            status = {"lifecycle_state": self._lifecycle, "stamp_ns": self.get_clock().now().nanoseconds,
                      **(self.core.status() if self.core is not None else
                         {"safety_state": reason.value, "detail": self._detail})}
        self._status_pub.publish(String(data=json.dumps(status)))

    def _publish_debug(self) -> None:
        with self._lock:
            if self.core is None or self.core.frame is None:
                return
            cur = conversions.input_to_rgb8(self.core.frame)
            goal = self.core.engine.goal_image
            right = conversions.input_to_rgb8(goal) if goal is not None else np.zeros_like(cur)
            msg = conversions.rgb_to_image_msg(np.concatenate([cur, right], axis=1), Image,
                                               self.get_clock().now().to_msg(), "debug")
            self._debug_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        with self._lock:
            values = {"lifecycle_state": self._lifecycle}
            values.update(self.core.diagnostic_values() if self.core is not None else
                          {"safety_state": self._reason().value, "backend": "none"})
            arr = messages.diagnostics_msg(self, self._lifecycle, self._reason(), self._detail, values)
        self._diag_pub.publish(arr)



def main(args: Optional[List[str]] = None) -> int:
    """Console entry point: spin the (unconfigured) lifecycle node until ^C / SIGTERM, then stop safely."""
    return spin_until_signal(PlannerNode, args)


if __name__ == "__main__":
    main()
