"""launch/planner.launch.py and its pip-path twin `ami-wm run`.

The launch file is loaded with the system launch_ros, else with the unmodified Jazzy sources in
../shared/ros-launch-jazzy (no wheel exists); test_colcon_launch.py runs it for real from a colcon install.
"""
import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "planner.launch.py"
REQUIRED_ARGS = {"camera_topic", "goal_topic", "config_file", "output_mode", "checkpoint", "backend",
                 "use_sim_time", "use_sim", "namespace"}
SHARED_LAUNCH = ROOT.parent / "shared" / "ros-launch-jazzy"


def _launch_arguments():
    """ARGUMENTS = [(name, default, description), ...] read from the file without importing it."""
    tree = ast.parse(LAUNCH.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ARGUMENTS":
            return ast.literal_eval(node.value)
    raise AssertionError("ARGUMENTS not found in the launch file")


def _load_launch_module():
    """The launch file as a module, importing launch/launch_ros from the system or the shared sources."""
    if importlib.util.find_spec("launch_ros") is None:
        if not (SHARED_LAUNCH / "launch_ros").is_dir():
            pytest.skip(f"neither a system launch_ros nor the shared Jazzy sources ({SHARED_LAUNCH})")
        pytest.importorskip("osrf_pycommon", reason="the shared launch sources need osrf-pycommon "
                            "(requirements-ros.txt)")
        sys.path.append(str(SHARED_LAUNCH))
    pytest.importorskip("rclpy", reason="rclpy wheels not installed")
    spec = importlib.util.spec_from_file_location("planner_launch", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_launch_description_with_launch_ros(monkeypatch, tmp_path):
    from ament_index_python import packages

    mod = _load_launch_module()
    from launch.actions import DeclareLaunchArgument

    monkeypatch.setattr(packages, "get_package_share_directory", lambda name: str(tmp_path))
    monkeypatch.setattr(mod, "get_package_share_directory", lambda name: str(tmp_path))
    desc = mod.generate_launch_description()
    declared = {e.name: e for e in desc.entities if isinstance(e, DeclareLaunchArgument)}
    assert REQUIRED_ARGS <= set(declared)
    assert all(a.description for a in declared.values())


@pytest.mark.parametrize("text,expected", [("true", True), ("YES", True), ("on", True), ("1", True),
                                           ("false", False), ("no", False), ("Off", False), ("0", False)])
def test_boolean_arguments(text, expected):
    assert _load_launch_module().parse_bool("use_sim", text) is expected


def test_bad_boolean_argument_names_the_values():
    mod = _load_launch_module()
    with pytest.raises(mod.LaunchArgumentError, match=r"use_sim:='maybe' is not a boolean; use one of \["):
        mod.parse_bool("use_sim", "maybe")


def test_params_file_applies_under_a_namespace(tmp_path):
    # the launch file and `ami-wm run --namespace` share ros/params_file.py
    import yaml

    from ami_world_model.ros import params_file as mod

    assert "from ami_world_model.ros.params_file import namespace_free_params_file" in LAUNCH.read_text()
    section = {"checkpoint": "models/default", "joint_names": []}
    old = tmp_path / "old.yaml"  # keyed by the node name: a namespaced node would silently ignore it
    old.write_text(yaml.safe_dump({"planner_node": {"ros__parameters": section}}))
    assert mod.namespace_free_params_file(str(old), "") == (str(old), section)  # root: used as it is
    path, got = mod.namespace_free_params_file(str(old), "arm1")
    assert got == section and path != str(old)
    assert yaml.safe_load(Path(path).read_text()) == {"/**": {"ros__parameters": section}}
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump({"/**": {"ros__parameters": section}}))
    assert mod.namespace_free_params_file(str(new), "arm1") == (str(new), section)
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"camera_node": {"ros__parameters": section}}))
    with pytest.raises(mod.ParamsFileError, match="no planner_node section"):
        mod.namespace_free_params_file(str(other), "arm1")


def test_launch_file_structure():
    args = _launch_arguments()
    names = {a[0] for a in args}
    assert REQUIRED_ARGS <= names, f"missing launch arguments {REQUIRED_ARGS - names}"
    assert all(isinstance(a[2], str) and len(a[2]) > 10 for a in args), "every argument needs a description"
    text = LAUNCH.read_text()
    # the executables it starts are console scripts of this package
    setup = (ROOT / "setup.py").read_text()
    for exe in ("planner_node", "sim_cell_node"):
        assert f'executable="{exe}"' in text and f'"{exe} = ' in setup
    # the parameters file it loads exists, is installed, and the overridable arguments are parameters
    assert (ROOT / "config" / "planner.yaml").exists()
    assert "config/*.yaml" in setup and "launch/*.launch.py" in setup
    from ami_world_model.node_config import PlannerNodeConfig

    overridable = ast.literal_eval(text.split("OVERRIDABLE = ")[1].split("\n")[0])
    fields = set(PlannerNodeConfig.__dataclass_fields__)
    assert set(overridable) <= fields
    # it configures and activates the lifecycle node, and ends the launch when either fails
    for needed in ("LifecycleNode", "TRANSITION_CONFIGURE", "TRANSITION_ACTIVATE", "OnStateTransition",
                   '"unconfigured"', '"errorprocessing"'):
        assert needed in text


@pytest.mark.ros
def test_ami_wm_run_mirrors_the_launch_arguments():
    import argparse

    from ami_world_model.ros import run

    p = argparse.ArgumentParser()
    run.add_arguments(p)
    flags = {a.dest for a in p._actions}
    for name in REQUIRED_ARGS - {"config_file", "use_sim"}:  # those two are --config and --sim
        assert name in flags, f"`ami-wm run` lacks --{name.replace('_', '-')}"
    assert {"config", "sim"} <= flags
    args = p.parse_args(["--checkpoint", "x", "--param", "control_rate_hz:=20.0", "--param", "joint_names:=[a, b]"])
    assert args.namespace == "" and p.parse_args(["--namespace", "arm1"]).namespace == "arm1"
    pytest.importorskip("rclpy", reason="rclpy wheels not installed")
    values = {q.name: q.value for q in run.parse_overrides(args)}
    assert values == {"checkpoint": "x", "control_rate_hz": 20.0, "joint_names": ["a", "b"]}


@pytest.mark.ros
def test_ami_wm_run_configures_and_activates(tmp_path):
    pytest.importorskip("rclpy", reason="rclpy wheels not installed")
    sys.path.insert(0, str(ROOT / "test"))
    from node_harness import save_tiny

    ckpt = save_tiny(tmp_path / "wm")
    exe = Path(sys.executable).with_name("ami-wm")
    proc = subprocess.run([str(exe), "run", "--duration", "2", "--checkpoint", ckpt, "--backend", "torch"],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ), cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "planner_node active" in out
    bad = subprocess.run([str(exe), "run", "--duration", "1", "--checkpoint", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ), cwd=tmp_path)
    assert bad.returncode == 1 and "configure failed" in bad.stdout + bad.stderr
    # the same with the simulated cell up and under a namespace: exit 1, the sim does not keep the process alive
    bad = subprocess.run([str(exe), "run", "--sim", "--namespace", "arm_bad", "--duration", "30", "--checkpoint",
                          str(tmp_path / "nope")], capture_output=True, text=True, timeout=120, env=dict(os.environ),
                         cwd=tmp_path)
    out = bad.stdout + bad.stderr
    assert bad.returncode == 1 and "configure failed" in out and "planner_node active" not in out, out[-3000:]
