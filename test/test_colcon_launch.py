"""The package as a ROS user gets it: `colcon build` into a temporary workspace, then `planner.launch.py` from
the install tree, run by the real launch system (the system's launch_ros, else the unmodified Jazzy sources
that CI finds in ../shared/ros-launch-jazzy beside the clone).

An observer node in this process sees, over DDS: the planner reach `active` under a namespace, its commands
move the simulated cell, and a terminal-style ^C (SIGINT to the whole process group) end everything cleanly
with exactly one zero command. A failed configure ends the launch with exit code 1 instead of leaving an
unconfigured planner running, and a bad boolean argument is refused by name.
"""
import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
SHARED_LAUNCH = ROOT.parent / "shared" / "ros-launch-jazzy"  # CI copies shared/ beside the clone
NS = "amiwm_launch_test"
RUNNER = """
import sys
import launch
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

ls = launch.LaunchService()
ls.include_launch_description(launch.LaunchDescription([IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=[a.split(":=", 1) for a in sys.argv[2:]])]))
sys.exit(ls.run())
"""


def launch_ros_path():
    """[] when the system launch_ros imports, [shared sources] when they exist; skip otherwise."""
    if importlib.util.find_spec("launch_ros") is not None:
        return []
    if (SHARED_LAUNCH / "launch_ros" / "__init__.py").exists():
        return [str(SHARED_LAUNCH)]
    pytest.skip(f"neither a system launch_ros nor the shared Jazzy sources ({SHARED_LAUNCH}) are available")


@pytest.fixture(scope="module")
def install(tmp_path_factory):
    """colcon-build the repository into a temporary workspace; returns the package's install prefix."""
    pytest.importorskip("rclpy", reason="rclpy wheels not installed")
    if importlib.util.find_spec("colcon_core") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("colcon-core is missing in CI: requirements-ros.txt installs it (make setup)")
        pytest.skip("colcon-core not installed (make setup installs it from requirements-ros.txt)")
    ws = tmp_path_factory.mktemp("colcon_ws")
    # this interpreter's colcon, so the installed scripts' shebang is this interpreter (as in the README)
    cmd = [sys.executable, "-m", "colcon", "--log-base", str(ws / "log"), "build", "--base-paths", str(ROOT),
           "--build-base", str(ws / "build"), "--install-base", str(ws / "install")]
    proc = subprocess.run(cmd, cwd=ws, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "is absent from the `packages` configuration" not in out, "sim assets would not be installed"
    return ws / "install" / "ami_world_model"


def test_install_tree(install):
    share = install / "share" / "ami_world_model"
    assert (install / "share" / "ament_index" / "resource_index" / "packages" / "ami_world_model").exists()
    for rel in ("package.xml", "launch/planner.launch.py", "config/planner.yaml"):
        assert (share / rel).is_file(), rel
    # exactly the shipped model: no ignored training artefacts (models/*.train.*, exports)
    assert sorted(p.name for p in (share / "models").iterdir()) == ["default.json", "default.safetensors"]
    for exe in ("planner_node", "sim_cell_node"):  # where `ros2 run ami_world_model <exe>` looks
        path = install / "lib" / "ami_world_model" / exe
        assert path.is_file() and os.access(path, os.X_OK), exe
    site = next((install / "lib").glob("python3*/site-packages"))
    assert (site / "ami_world_model" / "sim" / "assets" / "cell.xml").is_file()


def _env(install):
    env = dict(os.environ)
    site = next((install / "lib").glob("python3*/site-packages"))
    # what `source install/setup.bash` does: the installed package first, then the launch system
    paths = [str(site), *launch_ros_path(), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in (str(install), env.get("AMENT_PREFIX_PATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _launch(install, tmp_path, *args, **popen):
    runner = tmp_path / "run_launch.py"
    runner.write_text(RUNNER)
    launch_file = install / "share" / "ami_world_model" / "launch" / "planner.launch.py"
    log = open(tmp_path / "launch.log", "w+")
    proc = subprocess.Popen([sys.executable, str(runner), str(launch_file), *args], cwd=tmp_path, env=_env(install),
                            stdout=log, stderr=subprocess.STDOUT, **popen)
    return proc, log


def _output(log):
    log.flush()
    log.seek(0)
    return log.read()


class Observer:
    """An rclpy node of this test, in its own context: records commands, lifecycle transitions, the cell."""

    def __init__(self):
        import rclpy
        from geometry_msgs.msg import PointStamped, TwistStamped
        from lifecycle_msgs.msg import TransitionEvent
        from lifecycle_msgs.srv import GetState
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("launch_test_observer", context=self.context)
        self.lock = threading.Lock()
        self.commands, self.states, self.ee = [], [], []  # commands: (receive time, all-zero?)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)  # as Servo subscribes
        self.node.create_subscription(TwistStamped, f"/{NS}/servo_node/delta_twist_cmds", self._on_cmd, reliable)
        self.node.create_subscription(TransitionEvent, f"/{NS}/planner_node/transition_event",
                                      lambda m: self._add(self.states, m.goal_state.label), 10)
        self.node.create_subscription(PointStamped, f"/{NS}/sim_cell_node/ee_position",
                                      lambda m: self._add(self.ee, (m.point.x, m.point.y, m.point.z)), 10)
        # Transition events are one-shot (volatile): on a loaded machine the planner can be active before this
        # node has discovered it, so the state is also asked for.
        self._get_state = self.node.create_client(GetState, f"/{NS}/planner_node/get_state")
        self._get_state_request = GetState.Request
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _add(self, where, item):
        with self.lock:
            where.append(item)

    def _on_cmd(self, msg):
        v = (msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z,
             msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z)
        self._add(self.commands, (time.monotonic(), all(c == 0.0 for c in v)))

    def planner_state(self, timeout: float = 2.0):
        """The planner's lifecycle state label from its get_state service; None when it does not answer."""
        if not self._get_state.service_is_ready():
            return None
        future = self._get_state.call_async(self._get_state_request())
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            time.sleep(0.05)
        result = future.result() if future.done() else None
        return result.current_state.label if result is not None else None

    def snapshot(self):
        with self.lock:
            return list(self.commands), list(self.states), list(self.ee)

    def close(self):
        self.executor.shutdown(timeout_sec=2.0)
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        self.context.try_shutdown()


def _finished_cleanly(out: str, name: str) -> bool:
    """launch's own line for the node; it may come before or after launch's "process[name-N] was required"."""
    return re.search(rf"\[INFO\] \[{name}-\d+\]: process has finished cleanly", out) is not None


def _wait(cond, proc, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_launch_sim_under_namespace_then_sigint_stops_with_one_zero(install, tmp_path):
    launch_ros_path()  # skips here, before anything starts, when no launch_ros exists
    obs = Observer()
    # `yes` is a boolean here: IfCondition would have aborted the launch on it
    proc, log = _launch(install, tmp_path, "use_sim:=yes", f"namespace:={NS}", "backend:=torch",
                        start_new_session=True)  # its own process group, as a terminal runs it
    try:
        active = _wait(lambda: "active" in obs.snapshot()[1] or obs.planner_state() == "active", proc, 180.0)
        assert active, f"planner never became active; states {obs.snapshot()[1]}\n{_output(log)[-5000:]}"
        moving = _wait(lambda: sum(not z for _, z in obs.snapshot()[0]) >= 5, proc, 60.0)
        assert moving, f"no planned commands reached {NS}/servo_node\n{_output(log)[-5000:]}"
        ee_seen = _wait(lambda: len(obs.snapshot()[2]) >= 2, proc, 10.0)
        first = obs.snapshot()[2][0]
        moved = _wait(lambda: max(abs(a - b) for a, b in zip(obs.snapshot()[2][-1], first)) > 1e-3, proc, 30.0)
        assert ee_seen and moved, "the simulated cell did not move under the planner's commands"

        t_sigint = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # ^C in the terminal: launch and every node get SIGINT
        rc = proc.wait(timeout=60)
        time.sleep(1.0)  # the zero is acknowledged (reliable) before the planner exits; let the executor deliver it
        out = _output(log)
        assert rc == 0, out[-5000:]
        after = [zero for t, zero in obs.snapshot()[0] if t >= t_sigint]
        assert after.count(True) == 1 and after[-1], f"commands after SIGINT (True = zero): {after}"
        for name in ("planner_node", "sim_cell_node"):
            assert _finished_cleanly(out, name), out[-5000:]
        assert "SIGTERM" not in out and "SIGKILL" not in out, "a node had to be killed:\n" + out[-5000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        obs.close()
        log.close()


def test_failed_configure_shuts_the_launch_down(install, tmp_path):
    launch_ros_path()
    proc, log = _launch(install, tmp_path, f"checkpoint:={tmp_path / 'no_such_model'}", f"namespace:={NS}_bad")
    try:
        rc = proc.wait(timeout=180)
        out = _output(log)
        assert rc == 1, out[-5000:]
        assert "planner_node failed to configure (configuring -> unconfigured" in out, out[-5000:]
        assert "no_such_model" in out  # the node's own reason, above the launch's
        assert _finished_cleanly(out, "planner_node"), out[-5000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_bad_boolean_argument_is_refused_by_name(install, tmp_path):
    launch_ros_path()
    proc, log = _launch(install, tmp_path, "use_sim:=maybe")
    try:
        rc = proc.wait(timeout=120)
        out = _output(log)
        assert rc == 1 and "use_sim:='maybe' is not a boolean" in out, out[-3000:]
        assert "[planner_node-" not in out  # refused before any node started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
