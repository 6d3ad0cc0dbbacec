"""Shared helpers for the node tests (a helper module, not a test file): tiny checkpoints, and the planner
node + a peer node over real DDS.

The planner node runs in this process on an executor thread; the test talks to it only through topics,
services and its public ``~/status`` (real DDS between the two nodes), except for lifecycle transitions,
which it triggers with the LifecycleNode's public ``trigger_*`` methods (the smoke test uses the services).
"""
import json
import os
import threading
import time
from typing import Callable, List, Tuple

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ami_world_model.config import ActionSpec  # noqa: E402


def save_tiny(path, kind: str = "twist", names=("linear.x", "linear.y"), metrics=None, dt_s: float = 0.1,
              frame_id: str = "base_link", **overrides) -> str:
    """An untrained tiny world model checkpoint; returns the path stem."""
    from ami_world_model.models.checkpoint import save_world_model
    from ami_world_model.models.config import WorldModelConfig
    from ami_world_model.models.world_model import WorldModel

    torch.manual_seed(0)
    n = len(names)
    spec = ActionSpec(kind=kind, names=list(names), low=[-0.2] * n, high=[0.2] * n, mean=[0.0] * n,
                      std=[0.1] * n, dt_s=dt_s, frame_id=frame_id)
    model = WorldModel(WorldModelConfig.tiny(action=spec, metrics=dict(metrics or {}), **overrides))
    return str(save_world_model(model, path))


def tiny_sim_model(path) -> str:
    """An untrained tiny model with the simulated cell's action spec (eval / demo tests)."""
    from ami_world_model.models.checkpoint import save_world_model
    from ami_world_model.models.config import WorldModelConfig
    from ami_world_model.models.world_model import WorldModel
    from ami_world_model.sim.config import SimConfig

    torch.manual_seed(0)
    return str(save_world_model(WorldModel(WorldModelConfig.tiny(action=SimConfig().action_spec())), path))


def rgb_image(seed: int, h: int = 48, w: int = 64):
    from sensor_msgs.msg import Image

    from ami_world_model.ros.conversions import rgb_to_image_msg

    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return rgb_to_image_msg(rgb, Image)


class Harness:
    """PlannerNode + a peer node spinning on one executor thread."""

    def __init__(self, name: str, params: dict, multi_threaded: bool = False) -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
        from rclpy.parameter import Parameter

        from ami_world_model.ros.planner_node import PlannerNode

        self.node = PlannerNode(parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        self.peer = rclpy.create_node(f"test_peer_{name}")
        # Single-threaded, as `ami-wm run` and the launch file spin it: rclpy's MultiThreadedExecutor costs
        # enough Python overhead on 2 cores to delay ticks past the watchdog (flaky tests, not a node bug).
        self.executor = MultiThreadedExecutor(num_threads=2) if multi_threaded else SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.executor.add_node(self.peer)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        self.received: List[Tuple[float, object]] = []
        self.statuses: List[dict] = []
        self._lock = threading.Lock()
        from std_msgs.msg import String

        self.peer.create_subscription(String, f"/{self.node.get_name()}/status",
                                      lambda m: self._on_status(json.loads(m.data)), 100)

    def _on_status(self, status: dict) -> None:
        with self._lock:
            self.statuses.append(status)

    def status(self) -> dict:
        """The newest ``~/status`` (an empty dict before the first)."""
        with self._lock:
            return dict(self.statuses[-1]) if self.statuses else {}

    def status_value(self, key: str, default=None):
        return self.status().get(key, default)

    def collect(self, msg_type, topic: str, qos=10) -> None:
        def cb(msg):
            with self._lock:
                self.received.append((time.monotonic(), msg))
        self.peer.create_subscription(msg_type, topic, cb, qos)

    def messages(self, since: float = 0.0) -> List[Tuple[float, object]]:
        with self._lock:
            return [(t, m) for t, m in self.received if t >= since]

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
        self.peer.destroy_node()


def wait_for(cond: Callable[[], bool], timeout: float, poll: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll)
    return cond()


class Streamer:
    """Publishes camera frames at a fixed rate on a background thread until stopped."""

    def __init__(self, pub, rate_hz: float = 20.0, make: Callable[[int], object] = None) -> None:
        self.pub, self.period = pub, 1.0 / rate_hz
        self.make = make or (lambda i: rgb_image(i % 4))
        self.running = False
        self.last_pub = 0.0
        self._thread = None

    def start(self) -> None:
        self.running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while self.running:
            self.pub.publish(self.make(i))
            self.last_pub = time.monotonic()
            i += 1
            time.sleep(self.period)

    def stop(self) -> None:
        self.running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)


PERIOD = 0.1  # control_rate_hz 10
TWIST = "/servo_node/delta_twist_cmds"
QUIET = {"surprise_ticks": 0, "no_progress_ticks": 0, "goal_energy_threshold": 0.0}  # untrained model


def start_planner(name: str, ckpt, multi_threaded: bool = False, **params) -> Harness:
    """A Harness with a small planner budget, plus the peer's camera (sensor QoS) and latched goal publishers."""
    from sensor_msgs.msg import Image

    from ami_world_model.ros.planner_node import LATCHED_QOS, SENSOR_QOS

    base = {"checkpoint": ckpt, "control_rate_hz": 1.0 / PERIOD, "max_image_age_s": 0.3,
            "planner.num_samples": 16, "planner.iterations": 1, "planner.horizon_steps": 2,
            "debug_image_rate_hz": 0.0, **QUIET}
    base.update(params)
    h = Harness(name, base, multi_threaded=multi_threaded)
    h.image_pub = h.peer.create_publisher(Image, "/camera/image_raw", SENSOR_QOS)
    h.goal_pub = h.peer.create_publisher(Image, "/planner_node/goal_image", LATCHED_QOS)
    return h


def activate(h: Harness, goal: bool = True) -> None:
    """Configure and activate the planner; then (``goal``) publish a goal image and wait for the node to hold it."""
    from rclpy.lifecycle import TransitionCallbackReturn

    assert h.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert h.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    if goal:
        h.goal_pub.publish(rgb_image(99))
        assert wait_for(lambda: h.status_value("has_goal"), 5.0), "goal never arrived"


def is_zero_twist(m) -> bool:
    t = m.twist
    return all(v == 0.0 for v in (t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z))
