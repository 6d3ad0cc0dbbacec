"""What the planner node reports about itself: ``~/status`` (JSON, on every state change, frame and tick),
``/diagnostics`` (on its own timer, in every lifecycle state) and, while configured, the latched
``~/safety_state`` and ``~/goal_reached``. The messages are built in messages.py; this holds the publishers
and the state a node without a Commander reports (its lifecycle state, why configure failed)."""
from __future__ import annotations

import threading
from typing import Callable, Optional

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Bool, String

from ami_world_model.control.commander import Commander
from ami_world_model.ros import messages
from ami_world_model.ros.qos import LATCHED_QOS, STATUS_QOS
from ami_world_model.safety import StopReason


class NodeReports:
    """The node's report publishers; ``core()`` returns its Commander, or None while unconfigured."""

    def __init__(self, node: Node, lock: threading.RLock, core: Callable[[], Optional[Commander]],
                 diagnostics_rate_hz: float) -> None:
        self.node, self._lock, self._core = node, lock, core
        self.lifecycle = "unconfigured"
        self.no_core_reason = StopReason.UNCONFIGURED  # the reported reason while there is no Commander
        self.detail = ""  # why configure failed
        self._diag_pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._status_pub = node.create_publisher(String, "~/status", STATUS_QOS)
        self._state_pubs: tuple = ()  # (~/safety_state, ~/goal_reached) while configured
        self._diag_timer = node.create_timer(1.0 / max(diagnostics_rate_hz, 0.1), self.diagnostics)

    def open_state_topics(self) -> None:
        """At configure. Plain publishers: the safety state must be visible while inactive too."""
        self._state_pubs = (self.node.create_publisher(String, "~/safety_state", LATCHED_QOS),
                            self.node.create_publisher(Bool, "~/goal_reached", LATCHED_QOS))

    def close_state_topics(self) -> None:
        for pub in self._state_pubs:
            self.node.destroy_publisher(pub)
        self._state_pubs = ()

    def reason(self) -> Optional[StopReason]:
        core = self._core()
        return core.reason if core is not None else self.no_core_reason

    def state(self) -> None:
        """~/safety_state and ~/goal_reached (latched) and ~/status, on every state change."""
        with self._lock:
            if self._state_pubs:
                for pub, msg in zip(self._state_pubs, messages.state_msgs(self._core())):
                    pub.publish(msg)
        self.status()

    def status(self) -> None:
        with self._lock:
            msg = messages.status_msg(self.lifecycle, self.node.get_clock().now().nanoseconds, self._core(),
                                      self.reason(), self.detail)
        self._status_pub.publish(msg)

    def diagnostics(self) -> None:
        with self._lock:
            arr = messages.diagnostics_msg(self.node, self.lifecycle, self._core(), self.reason(), self.detail)
        self._diag_pub.publish(arr)
