"""The exit path's signal handling (`init_keeping_context`), in this process with real rclpy.

A ^C must never surface as an exception inside a spin: raised from a handler while rclpy converted a message
in C++, it came out as a RuntimeError ("Unable to convert call argument") that escaped `ami-wm run`'s
`except KeyboardInterrupt` and made it exit 1. The first signal only sets the stop event; a second one
raises KeyboardInterrupt, to force a shutdown that hangs."""
import os
import signal
import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy wheels not installed")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ami_world_model.ros.planner_node import init_keeping_context  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture
def stop_event():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stop = init_keeping_context([])
    try:
        yield stop
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
        if rclpy.ok():
            rclpy.shutdown()


def test_signals_during_a_busy_spin_only_set_the_stop_event(stop_event):
    node = rclpy.create_node("signal_probe")
    got = []
    node.create_subscription(Image, "signal_probe_images", got.append, 10)
    pub = node.create_publisher(Image, "signal_probe_images", 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    msg = Image(height=64, width=64, encoding="rgb8", step=64 * 3, data=bytes(64 * 64 * 3))
    try:
        for i in range(20):  # a signal at a different point of the take/convert/callback cycle each time
            stop_event.clear()
            sig = signal.SIGINT if i % 2 else signal.SIGTERM
            threading.Timer(0.005 + 0.003 * i, os.kill, (os.getpid(), sig)).start()
            end = time.monotonic() + 5.0
            while not stop_event.is_set() and time.monotonic() < end:
                pub.publish(msg)
                executor.spin_once(timeout_sec=0.01)
            assert stop_event.is_set(), f"signal {i} never reached the handler"
        assert got, "the probe's images never arrived, so no signal hit a message conversion"
    finally:
        executor.shutdown()
        node.destroy_node()


def test_a_second_signal_forces_keyboard_interrupt(stop_event):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the handler runs on the main thread at the next bytecode boundary
    assert stop_event.is_set()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
