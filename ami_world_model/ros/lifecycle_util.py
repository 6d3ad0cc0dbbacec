"""Process and lifecycle plumbing shared by `planner_node`, `sim_cell_node` and `ami-wm run`: signal handling that
keeps the context up for the stop command, and a ~/change_state that refuses bad transitions instead of raising."""
from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Callable, List, Optional

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecyclePublisher
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions


def package_share_dir() -> Optional[Path]:
    """share/ami_world_model of a colcon install, or None (pip / editable install)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("ami_world_model"))
    except Exception:  # noqa: BLE001 - not installed through ament: fall back to the repo
        return None


def spin_until_signal(make_node: Callable[[], Node], args: Optional[List[str]] = None) -> int:
    """A node's console entry: spin it until ^C / SIGTERM, then ``stop_for_exit`` (one stop command) if the node
    has one. The context stays up until spinning has ended, so no callback runs against a shut-down context."""
    stop = init_keeping_context(args)
    node = make_node()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.1)  # the timeout bounds how long a signal waits to be seen
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stop_for_exit = getattr(node, "stop_for_exit", None)
        if stop_for_exit is not None:
            stop_for_exit()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def destroy_entities(node: Node, entities: list, publishers: list) -> None:
    """Destroy what a configure created: its subscriptions and services (timers and clients are the caller's),
    and its publishers, lifecycle or plain."""
    destroy = {"Subscription": node.destroy_subscription, "Service": node.destroy_service}
    for ent in entities:
        destroy.get(type(ent).__name__, lambda x: None)(ent)
    for pub in publishers:
        if isinstance(pub, LifecyclePublisher):
            node.destroy_lifecycle_publisher(pub)
        else:
            node.destroy_publisher(pub)


def guard_change_state(node: Node) -> None:
    """rclpy raises inside ~/change_state for a transition invalid in the current state (e.g. activate
    twice), which kills the executor's spin: answer success=False instead and keep running."""
    srv = getattr(node, "_service_change_state", None)
    if srv is None:
        return
    inner = srv.callback

    def guarded(req, resp):
        try:
            return inner(req, resp)
        except Exception as exc:  # noqa: BLE001 - a bad request must not take the node down
            node.get_logger().warning(f"refused lifecycle transition {req.transition.id}: {exc}")
            resp.success = False
            return resp

    srv.callback = guarded


def init_keeping_context(args: Optional[List[str]] = None) -> threading.Event:
    """``rclpy.init`` with our SIGINT/SIGTERM handlers instead of rclpy's; returns the event they set.

    rclpy's own handler would shut the context down before an active planner could send its stop zero; ours
    leave the context up, so the caller can ``stop_for_exit`` first. They only set the event, which the caller's
    spin loop checks: an exception raised from a handler lands wherever the main thread happens to be, and
    inside rclpy's C++ message conversion it surfaced as a RuntimeError ("Unable to convert call argument")
    rather than KeyboardInterrupt. A second signal raises KeyboardInterrupt, for a shutdown that hangs.
    """
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop
