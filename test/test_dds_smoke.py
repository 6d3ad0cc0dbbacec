"""Smoke test: `planner_node` started from its console entry point in a separate process; this test
configures + activates it over the lifecycle services, publishes a camera Image and hears back over DDS
(the /diagnostics entry counting received images, and a twist command once a goal is set)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy wheels not installed")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState  # noqa: E402
from node_harness import rgb_image, save_tiny  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ami_world_model.ros.planner_node import SENSOR_QOS  # noqa: E402

pytestmark = pytest.mark.ros
EXE = Path(sys.executable).with_name("planner_node")


def _spin_until(node, cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
        if cond():
            return True
    return cond()


def _call(node, client, req, timeout=20.0):
    assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} not available"
    fut = client.call_async(req)
    assert _spin_until(node, fut.done, timeout), f"{client.srv_name} did not answer"
    return fut.result()


def test_planner_node_process_over_dds(tmp_path):
    if not EXE.exists():
        pytest.skip(f"console entry point {EXE} not installed (pip install -e .)")
    ckpt = save_tiny(tmp_path / "wm")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(tmp_path / "node.log", "w")
    proc = subprocess.Popen([str(EXE), "--ros-args", "-p", f"checkpoint:={ckpt}", "-p", "backend:=torch",
                             "-p", "surprise_ticks:=0", "-p", "no_progress_ticks:=0",
                             "-p", "planner.num_samples:=16", "-p", "planner.iterations:=1",
                             "-p", "max_image_age_s:=2.0"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    rclpy.init()
    node = rclpy.create_node("smoke_peer")
    try:
        diags, cmds = [], []
        node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
        node.create_subscription(TwistStamped, "/servo_node/delta_twist_cmds", cmds.append, 10)
        # diagnostics flow while still unconfigured
        assert _spin_until(node, lambda: any(s.name.startswith("planner_node") for d in diags for s in d.status),
                           30.0), "no /diagnostics from the node process"
        change = node.create_client(ChangeState, "/planner_node/change_state")
        for t in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            assert _call(node, change, ChangeState.Request(transition=Transition(id=t))).success
        # an invalid transition (activate twice) is refused, and the node keeps serving
        again = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVATE))
        assert not _call(node, change, again).success
        pub = node.create_publisher(Image, "/camera/image_raw", SENSOR_QOS)

        def images_received():
            vals = [dict((kv.key, kv.value) for kv in s.values) for d in diags for s in d.status
                    if s.name.startswith("planner_node")]
            return max((int(v.get("images_received", 0)) for v in vals), default=0)

        def publish_until(cond, timeout):
            """Publish frames until ``cond`` (evaluated once per frame: it may call a service) holds."""
            end = time.monotonic() + timeout
            i = 0
            while time.monotonic() < end:
                pub.publish(rgb_image(i))
                i += 1
                _spin_until(node, lambda: False, 0.05)
                if cond():
                    return True
            return False

        assert publish_until(lambda: images_received() > 0, 20.0), "diagnostics never counted an image"
        goal = node.create_client(Trigger, "/planner_node/set_goal_from_current")
        answers = []

        def goal_set():
            answers.append(_call(node, goal, Trigger.Request()))
            return answers[-1].success

        assert publish_until(goal_set, 10.0), f"{answers[-3:]} {(tmp_path / 'node.log').read_text()[-2000:]}"
        assert publish_until(lambda: len(cmds) > 0, 20.0), "no twist command from the node process"
        assert cmds[-1].header.frame_id == "base_link"
        assert proc.poll() is None, "node process died"
        # ^C on an active node: it deactivates on the way out, so ONE zero command arrives, then it exits 0
        n = len(cmds)
        os.killpg(proc.pid, signal.SIGINT)
        assert _spin_until(node, lambda: proc.poll() is not None, 20.0), "node did not exit on SIGINT"
        _spin_until(node, lambda: False, 0.3)
        assert proc.returncode == 0, (tmp_path / "node.log").read_text()[-3000:]
        tail = cmds[n:]
        assert tail and tail[-1].twist.linear.x == 0.0 and tail[-1].twist.linear.y == 0.0, "no stop zero on exit"
    finally:
        node.destroy_node()
        rclpy.shutdown()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
