"""Setting MoveIt Servo's command type to TWIST (Jazzy ``~/switch_command_type``) when the node activates.

One client for the node's life; on activate it retries until the service is ready (every ``retry_s``, for at
most ``timeout_s``), then checks the response's ``success`` and logs the outcome either way. Without
moveit_msgs (the pip install) it logs, once, the ``ros2 service call`` to run by hand.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

from rclpy.node import Node

SERVO_TWIST = 1  # moveit_msgs/srv/ServoCommandType.TWIST


def servo_command_type() -> Optional[Any]:
    try:
        from moveit_msgs.srv import ServoCommandType  # type: ignore
    except ImportError:
        return None
    return ServoCommandType


class ServoTwistSwitch:
    """See the module docstring. ``srv_type``/``make_request`` default to ServoCommandType(TWIST)."""

    def __init__(self, node: Node, service: str, srv_type: Any = None,
                 make_request: Optional[Callable[[], Any]] = None, retry_s: float = 0.5,
                 timeout_s: float = 10.0) -> None:
        self.node, self.service, self.retry_s, self.timeout_s = node, service, retry_s, timeout_s
        srv_type = srv_type or servo_command_type()
        self.result: Optional[bool] = None  # True once Servo accepted, False when it refused or never came
        self._timer = self._future = None
        if srv_type is None:
            self.client = None
            node.get_logger().info(
                "moveit_msgs is not importable, so Servo's command type cannot be set from here; run once: "
                f"ros2 service call {service} moveit_msgs/srv/ServoCommandType '{{command_type: 1}}'")
            return
        self._make_request = make_request or (lambda: srv_type.Request(command_type=SERVO_TWIST))
        self.client = node.create_client(srv_type, service)

    def start(self) -> None:
        """Begin (or restart) trying; returns at once, the node's executor does the rest."""
        if self.client is None:
            return
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
                self.node.get_logger().error(
                    f"{self.service} not available after {self.timeout_s:g} s: Servo ignores twists until its "
                    "command type is TWIST (ros2 service call ... '{command_type: 1}')")
            return
        self.stop()
        self._future = self.client.call_async(self._make_request())
        self._future.add_done_callback(self._done)

    def _done(self, future) -> None:
        res = future.result()
        self.result = bool(res is not None and res.success)
        if self.result:
            self.node.get_logger().info(f"{self.service}: Servo command type set to TWIST")
        else:
            self.node.get_logger().error(f"{self.service} refused TWIST: Servo will ignore the twists")
