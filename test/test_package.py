"""The package is what ROS tools and pip expect: metadata agrees, entry points resolve, code lints."""
import ast
import importlib
import pkgutil
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _setup_kwargs():
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            return {kw.arg: kw.value for kw in node.keywords}
    raise AssertionError("setup() call not found in setup.py")


def _console_scripts():
    entry = ast.literal_eval(_setup_kwargs()["entry_points"])
    return dict(s.replace(" ", "").split("=", 1) for s in entry["console_scripts"])


def test_package_xml_matches_setup_py():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    kwargs = _setup_kwargs()
    assert root.findtext("name") == "ami_world_model"
    assert ast.literal_eval(kwargs["version"]) == root.findtext("version")
    import ami_world_model

    assert ami_world_model.__version__ == root.findtext("version")
    assert root.find("export/build_type").text == "ament_python"
    assert (ROOT / "resource" / "ami_world_model").exists()
    deps = {e.text for e in root.iter("exec_depend")}
    for needed in ("rclpy", "sensor_msgs", "geometry_msgs", "trajectory_msgs", "std_msgs", "std_srvs",
                   "diagnostic_msgs", "lifecycle_msgs", "launch", "launch_ros"):
        assert needed in deps, f"package.xml lacks exec_depend {needed}"


def test_console_scripts_resolve():
    scripts = _console_scripts()
    assert {"planner_node", "sim_cell_node", "ami-wm"} <= set(scripts)
    for name, target in scripts.items():
        module, func = target.split(":")
        mod = importlib.import_module(module)
        assert callable(getattr(mod, func)), f"{name} -> {target} is not callable"


def test_launch_file_names_existing_executables():
    text = (ROOT / "launch" / "planner.launch.py").read_text()
    named = set(re.findall(r"executable\s*=\s*['\"]([\w\-]+)['\"]", text))
    assert named, "launch file names no executables"
    assert named <= set(_console_scripts()), f"launch names unknown executables {named - set(_console_scripts())}"


def test_cli_subcommand_modules_exist():
    from ami_world_model.cli import COMMANDS

    for name, (module, _) in COMMANDS.items():
        mod = importlib.import_module(module)
        assert hasattr(mod, "add_arguments") and hasattr(mod, "main"), f"`ami-wm {name}`: {module} lacks the API"


def test_core_never_imports_rclpy():
    # A fresh interpreter: this test process may have rclpy loaded by other tests.
    code = (
        "import importlib, pkgutil, sys, ami_world_model\n"
        "for m in pkgutil.walk_packages(ami_world_model.__path__, 'ami_world_model.'):\n"
        "    if '.ros' in m.name or m.name.endswith('__main__'):\n"
        "        continue\n"
        "    importlib.import_module(m.name)\n"
        "bad = [k for k in sys.modules if k == 'rclpy' or k.endswith('_msgs') or '_msgs.' in k]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, f"core imported ROS modules: {proc.stdout} {proc.stderr[-2000:]}"


def test_every_module_imports():
    import ami_world_model

    failures = {}
    for m in pkgutil.walk_packages(ami_world_model.__path__, "ami_world_model."):
        try:
            importlib.import_module(m.name)
        except Exception as exc:  # noqa: BLE001 - report every broken module at once
            failures[m.name] = repr(exc)
    assert not failures, failures


def test_lint():
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in this environment (make setup installs it)")
    proc = subprocess.run([str(ruff), "check", "ami_world_model", "test", "launch", "scripts"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:]
