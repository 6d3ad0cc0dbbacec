"""Getting MoveIt Servo to take the node's twists, when the node activates.

- Jazzy (moveit_msgs has ``ServoCommandType``): call ``<servo>/switch_command_type`` with TWIST.
- Humble, or moveit_msgs not importable (the pip install): Humble's Servo has no command type and does not
  move until ``<servo>/start_servo`` (std_srvs/Trigger) is called, so that is called when the service exists;
  the one-line ``ros2 service call`` a Jazzy Servo needs instead is logged once, with the resolved name.

``<servo>`` is the parent of the ``servo_switch_service`` parameter (``servo_node/switch_command_type`` ->
``servo_node/start_servo``), resolved in the node's namespace. One client for the node's life; on activate
it retries until the service is ready (every ``retry_s``, for at most ``timeout_s``), then checks the
response's ``success`` and logs the outcome either way.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

from rclpy.node import Node
from std_srvs.srv import Trigger

SERVO_TWIST = 1  # moveit_msgs/srv/ServoCommandType.TWIST


def servo_command_type() -> Optional[Any]:
    """moveit_msgs/srv/ServoCommandType, or None (Humble's moveit_msgs has none; the pip install has none)."""
    try:
        from moveit_msgs.srv import ServoCommandType  # type: ignore
    except ImportError:
        return None
    return ServoCommandType


def start_servo_service(switch_service: str) -> str:
    """Humble's start service next to the (resolved) command-type service: /ns/servo_node/start_servo."""
    parent = switch_service.rsplit("/", 1)[0] if "/" in switch_service else ""
    return f"{parent}/start_servo"


def switch_hint(switch_service: str) -> str:
    """The command a user runs once when the node cannot set a Jazzy Servo's command type itself."""
    return f"ros2 service call {switch_service} moveit_msgs/srv/ServoCommandType '{{command_type: 1}}'"


class ServoTwistSwitch:
    """See the module docstring. ``srv_type``/``make_request`` default to ServoCommandType(TWIST), and without
    it to Trigger on ``start_servo``. ``service`` is the resolved name of the service called."""

    def __init__(self, node: Node, service: str, srv_type: Any = None,
                 make_request: Optional[Callable[[], Any]] = None, retry_s: float = 0.5,
                 timeout_s: float = 10.0) -> None:
        self.node, self.retry_s, self.timeout_s = node, retry_s, timeout_s
        switch = node.resolve_service_name(service)
        srv_type = srv_type or servo_command_type()
        self.starts_servo = srv_type is None  # True: Humble's start_servo (Trigger) is the service called
        self.result: Optional[bool] = None  # True once Servo accepted, False when it refused or never came
        self._timer = self._future = None
        if srv_type is not None:
            self.service = switch
            self._make_request = make_request or (lambda: srv_type.Request(command_type=SERVO_TWIST))
            self._texts = {"ok": "Servo command type set to TWIST",
                           "refused": "refused TWIST: Servo will ignore the twists",
                           "missing": f"Servo ignores twists until its command type is TWIST ({switch_hint(switch)})"}
        else:
            srv_type, self.service, self._make_request = Trigger, start_servo_service(switch), Trigger.Request
            # No start service may well mean a Jazzy Servo (or the simulated cell): not an error by itself.
            self._texts = {"ok": "Servo started",
                           "refused": "refused to start Servo: it will not move",
                           "missing": f"nothing started. A Humble Servo that comes up later does not move until "
                                      f"started: ros2 service call {self.service} std_srvs/srv/Trigger; a Jazzy "
                                      f"Servo needs its command type instead: {switch_hint(switch)}"}
            node.get_logger().info(
                "moveit_msgs/srv/ServoCommandType is not importable, so a Jazzy Servo's command type cannot be set "
                f"from here; run once: {switch_hint(switch)}. A Humble Servo is started with {self.service}, "
                "which this node calls on activate when it exists.")
        self.client = node.create_client(srv_type, self.service)

    def start(self) -> None:
        """Begin (or restart) trying; returns at once, the node's executor does the rest."""
        self.stop()
        self.result, self._deadline = None, time.monotonic() + self.timeout_s
        self._timer = self.node.create_timer(self.retry_s, self._try)
        self._try()

    def stop(self) -> None:
        if self._timer is not None:
            self.node.destroy_timer(self._timer)
            self._timer = None

    def _try(self) -> None:
        if self._future is not None and not self._future.done():
            return
        if not self.client.service_is_ready():
            if time.monotonic() > self._deadline:
                self.stop()
                self.result = False
                text = f"{self.service} not available after {self.timeout_s:g} s: {self._texts['missing']}"
                if self.starts_servo:  # one call site per severity (rclpy's logger insists)
                    self.node.get_logger().info(text)
                else:
                    self.node.get_logger().error(text)
            return
        self.stop()
        self._future = self.client.call_async(self._make_request())
        self._future.add_done_callback(self._done)

    def _done(self, future) -> None:
        res = future.result()
        self.result = bool(res is not None and res.success)
        if self.result:
            self.node.get_logger().info(f"{self.service}: {self._texts['ok']}")
        else:
            detail = f" ({res.message})" if res is not None and getattr(res, "message", "") else ""
            self.node.get_logger().error(f"{self.service} {self._texts['refused']}{detail}")
