"""`planner_node`: a managed (lifecycle) node — camera in, world-model planning, arm commands out.

Thin over the core: PlannerNodeConfig (parameters), Commander (inputs, safety, commands, status; in
``control/commander.py``) over a PlanningEngine, and conversions (messages <-> arrays). This module only
wires ROS to them: callbacks, QoS (ros/qos.py), messages (built in ros/messages.py, reported by ros/status.py).

Lifecycle: configure loads the checkpoint + backend and validates it against output_mode (FAILURE with a
logged reason on any mismatch); activate starts the control timer; deactivate publishes one stop command;
cleanup / shutdown release the model. /diagnostics is published at diagnostics_rate_hz in every state;
``~/status`` (std_msgs/String, JSON) on every tick, frame, goal and state change (docs/PARAMETERS.md).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, List, Optional

import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.duration import Duration
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Float32, Float32MultiArray
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from ami_world_model.control.commander import Command, Commander
from ami_world_model.node_config import PlannerNodeConfig, resolve_checkpoint
from ami_world_model.ros import conversions, messages
from ami_world_model.ros.lifecycle_util import (
    destroy_entities,
    guard_change_state,
    init_keeping_context,
    package_share_dir,
    spin_until_signal,
)
from ami_world_model.ros.params import declare_parameters, install_validation, read_config
from ami_world_model.ros.qos import COMMAND_QOS, ESTOP_QOS, LATCHED_QOS, SENSOR_QOS, STATUS_QOS
from ami_world_model.ros.servo import ServoTwistSwitch
from ami_world_model.ros.status import NodeReports
from ami_world_model.safety import StopReason

__all__ = ["PlannerNode", "init_keeping_context", "main", "package_share_dir",
           "COMMAND_QOS", "ESTOP_QOS", "LATCHED_QOS", "SENSOR_QOS", "STATUS_QOS"]


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
        self.cfg: Optional[PlannerNodeConfig] = None
        self.core: Optional[Commander] = None
        self._entities: list = []  # subscriptions, services, timers created at configure
        self._pubs: list = []
        self._control_timers: list = []
        self._servo: Optional[ServoTwistSwitch] = None
        self._reports = NodeReports(self, self._lock, lambda: self.core,
                                    float(self.get_parameter("diagnostics_rate_hz").value))

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            cfg = read_config(self)
            path = resolve_checkpoint(cfg.checkpoint, package_share_dir())
            from ami_world_model.control.engine import open_engine  # torch import: only when configuring

            engine, joint_names, warnings = open_engine(cfg, path)
        except Exception as exc:  # noqa: BLE001 - any failure must fail the transition, not the process
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            self._reports.no_core_reason = StopReason.CONFIGURE_FAILED
            self._reports.detail = f"{type(exc).__name__}: {exc}"
            self._reports.state()
            return TransitionCallbackReturn.FAILURE
        for w in warnings:
            self.get_logger().warning(w)
        with self._lock:
            self.cfg, self._reports.detail, self._reports.lifecycle = cfg, "", "inactive"
            self.core = Commander(cfg, engine, joint_names, lambda: self.get_clock().now().nanoseconds,
                                  log=self._log, on_change=self._reports.state)
            self._create_interfaces(cfg)
        self._reports.state()
        self.get_logger().info(messages.configured_text(path, cfg, engine))
        return TransitionCallbackReturn.SUCCESS

    def _log(self, level: str, msg: str) -> None:
        # one call site per severity: rclpy's logger refuses a changing severity at one site
        if level == "info":
            self.get_logger().info(msg)
        else:
            self.get_logger().warning(msg)

    def _qos_events(self, what: str, topic: str) -> SubscriptionEventCallbacks:
        """Logs why a publisher the node cannot hear is not heard (an incompatible QoS)."""
        return SubscriptionEventCallbacks(incompatible_qos=lambda ev: self.get_logger().error(
            messages.qos_mismatch_text(what, topic, ev.last_policy_kind)))

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
        self._pubs = [self._cmd_pub, self._energy_pub, self._plan_pub, self._debug_pub]
        self._reports.open_state_topics()
        sub = self.create_subscription
        e = self._entities
        e.append(sub(Image, cfg.camera_topic, self._on_image, SENSOR_QOS))
        if cfg.compressed_camera_topic:
            e.append(sub(CompressedImage, cfg.compressed_camera_topic, self._on_compressed, SENSOR_QOS))
        e.append(sub(JointState, cfg.joint_state_topic, self._on_joint_state, SENSOR_QOS))
        e.append(sub(Image, cfg.goal_topic, self._on_goal, LATCHED_QOS,
                     event_callbacks=self._qos_events("goal", cfg.goal_topic)))
        # E-stop from ANY publisher: a VOLATILE reliable subscription connects to volatile publishers (`ros2 topic
        # pub`, PLC/IO bridges) and to latched ones; a second, TRANSIENT_LOCAL one also receives what a latched
        # publisher sent before this node subscribed (it cannot match volatile publishers: that is expected).
        e.append(sub(Bool, cfg.estop_topic, self._on_estop, ESTOP_QOS,
                     event_callbacks=self._qos_events("e-stop", cfg.estop_topic)))
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
            self._reports.lifecycle = "active"
            self.core.activate()
            self._control_timers = [self.create_timer(self.cfg.control_period_s, self._tick)]
            if self.cfg.debug_image_rate_hz > 0:
                self._control_timers.append(self.create_timer(1.0 / self.cfg.debug_image_rate_hz, self._publish_debug))
        self._reports.state()
        if self._servo is not None:
            self._servo.start()
        return ret

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        with self._lock:
            self._reports.lifecycle = "inactive"
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

    on_error = on_cleanup  # an error in a transition: release everything, back to unconfigured

    def _stop_timers(self) -> None:
        for t in self._control_timers:
            self.destroy_timer(t)
        self._control_timers = []

    def _release(self, lifecycle: str) -> None:
        with self._lock:
            self._stop_timers()
            destroy_entities(self, self._entities, self._pubs)
            self._reports.close_state_topics()
            self._entities, self._pubs = [], []
            if self.core is not None:
                self.core.engine.close()
            self.core, self.cfg = None, None
            self._reports.lifecycle, self._reports.no_core_reason = lifecycle, StopReason.UNCONFIGURED
        self._reports.state()

    def stop_for_exit(self, timeout_s: float = 1.0) -> None:
        """Before exiting: an active node deactivates (ONE stop command), then gives reliable subscribers
        (Servo, the JTC) time to acknowledge it."""
        if not (self._reports.lifecycle == "active" and rclpy.ok()):
            return
        self.trigger_deactivate()
        pub = getattr(self, "_cmd_pub", None)
        if pub is not None and pub in self._pubs:
            pub.wait_for_all_acked(Duration(seconds=timeout_s))

    # ------------------------------------------------------------------ inputs
    def _on_image(self, msg: Image) -> None:
        self._store_frame(msg, conversions.image_msg_to_input)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._store_frame(msg, conversions.compressed_msg_to_input)

    def _convert(self, what: str, msg, convert: Callable):
        """``msg`` as model input, or None when the Commander rejected it (bad input never stops the node)."""
        try:
            return convert(msg, *self.core.engine.image_hw, crop=self.core.engine.crop)
        except Exception as exc:  # noqa: BLE001
            self.core.reject(what, exc)
            return None

    def _store_frame(self, msg, convert: Callable) -> None:
        if self._reports.lifecycle != "active":
            return  # rclpy has no lifecycle subscriptions: gate on the state ourselves
        t0 = time.perf_counter()
        with self._lock:
            if self.core is None or (frame := self._convert("image", msg, convert)) is None:
                return
            self.core.image(frame, messages.stamp_ns(msg.header.stamp), time.perf_counter() - t0)
        self._reports.status()

    def _on_joint_state(self, msg: JointState) -> None:
        if self._reports.lifecycle != "active":
            return
        with self._lock:
            if self.core is not None:
                self.core.joint_state(msg.name, msg.position)

    def _on_goal(self, msg: Image) -> None:
        with self._lock:
            if self.core is None or (goal := self._convert("goal", msg, conversions.image_msg_to_input)) is None:
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

    def _command_service(self, resp, call: Callable[[Commander], List[Command]], done: str):
        """Runs ``call`` on the Commander and publishes the commands it returns; "not configured" without one."""
        with self._lock:
            if self.core is None:
                resp.success, resp.message = False, "not configured"
            else:
                self._publish(call(self.core))
                resp.success, resp.message = True, done
        return resp

    def _srv_enable(self, req: SetBool.Request, resp: SetBool.Response) -> SetBool.Response:
        return self._command_service(resp, lambda core: core.set_enabled(bool(req.data)),
                                     "enabled" if req.data else "disabled")

    def _srv_clear_goal(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        return self._command_service(resp, lambda core: core.clear_goal(), "goal cleared")

    def _srv_goal_from_current(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        with self._lock:
            ok = self.core is not None and self.core.goal_from_current()
        resp.success = ok
        resp.message = "goal set from the current frame" if ok else "no fresh camera frame to use as the goal"
        return resp

    # ------------------------------------------------------------------ control and messages
    def _tick(self) -> None:
        with self._lock:
            if self.core is None:
                return
            steps = self.core.last_step
            self._publish(self.core.tick())
            if self.core.last_step is not steps:
                self._energy_pub.publish(Float32(data=float(self.core.last_step.current_energy)))
                self._plan_pub.publish(messages.plan_msg(self.core.last_step.actions))
        self._reports.status()

    def _publish(self, commands: List[Command]) -> None:
        for cmd in commands:
            self._cmd_pub.publish(messages.command_msg(cmd, self.cfg, self.core.engine.spec.names,
                                                       self.core.joint_names))

    def _publish_debug(self) -> None:
        with self._lock:
            if self.core is None or self.core.frame is None:
                return
            self._debug_pub.publish(messages.debug_image_msg(self.core.frame, self.core.engine.goal_image,
                                                             self.get_clock().now().to_msg()))


def main(args: Optional[List[str]] = None) -> int:
    """Console entry point: spin the (unconfigured) lifecycle node until ^C / SIGTERM, then stop safely."""
    return spin_until_signal(PlannerNode, args)


if __name__ == "__main__":
    main()
