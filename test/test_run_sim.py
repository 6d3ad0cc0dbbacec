"""`ami-wm run --sim --namespace` (the pip-path launch) in its own process: the shipped model drives the
simulated cell, both inside the namespace.

The test listens over DDS from this process: the planner must send non-zero twists to the sim (the goal is
the sim's latched goal image, wired by `--sim`), and on shutdown exactly one zero after them."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy wheels not installed")

from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).with_name("ami-wm")
NS = "run_sim_ns"


def test_run_sim_moves_the_arm(tmp_path):
    if not EXE.exists():
        pytest.skip(f"console entry point {EXE} not installed (pip install -e .)")
    if not (ROOT / "models" / "default.json").exists():
        pytest.skip("the shipped model models/default is missing")
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen([str(EXE), "run", "--sim", "--namespace", NS, "--duration", "120"], cwd=ROOT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    rclpy.init()
    node = rclpy.create_node("run_sim_peer")
    cmds = []
    node.create_subscription(TwistStamped, f"/{NS}/servo_node/delta_twist_cmds", cmds.append,
                             QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    try:
        end = time.monotonic() + 60.0
        moving = lambda: sum(1 for c in cmds if abs(c.twist.linear.x) + abs(c.twist.linear.y) > 0)  # noqa: E731
        while time.monotonic() < end and moving() < 5 and proc.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.1)
        assert moving() >= 5, f"no planned motion reached the sim; log:\n{(tmp_path / 'run.log').read_text()[-3000:]}"
        assert all(c.header.frame_id == "base_link" for c in cmds)
        os.killpg(proc.pid, signal.SIGINT)  # ^C: the planner deactivates, sending one zero
        n_before = len(cmds)
        end = time.monotonic() + 20.0
        while time.monotonic() < end and proc.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.1)
        for _ in range(10):
            rclpy.spin_once(node, timeout_sec=0.05)
        rc = proc.wait(timeout=20)
        assert rc == 0, f"ami-wm run exited {rc} after ^C; log:\n{(tmp_path / 'run.log').read_text()[-3000:]}"
        tail = cmds[n_before - 1:]
        assert tail and tail[-1].twist.linear.x == 0.0 and tail[-1].twist.linear.y == 0.0, "no stop zero at exit"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        node.destroy_node()
        rclpy.shutdown()
