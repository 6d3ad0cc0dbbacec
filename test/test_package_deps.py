"""package.xml declares what the code imports, with keys rosdep resolves; the rest comes from
requirements-robot.txt, which keeps apt's numpy 1.x."""
import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APT_KEYS = {"numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml", "tqdm": "python3-tqdm",
            "matplotlib": "python3-matplotlib", "imageio": "python3-imageio"}
PIP_ONLY = {"torch", "safetensors", "onnx", "onnxruntime", "mujoco", "rosbags"}  # no rosdep key on Ubuntu
OPTIONAL = {"tensorrt", "moveit_msgs"}  # used when importable, absence handled (see README)


def _imported_top_level():
    names = set()
    for path in [*(ROOT / "ami_world_model").rglob("*.py"), *(ROOT / "launch").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"ami_world_model", "__future__"}


def test_every_import_is_declared_or_pip_only():
    deps = {e.text for e in ET.parse(ROOT / "package.xml").getroot().iter("exec_depend")}
    robot = {line.split("==")[0].split("<")[0].strip() for line in (ROOT / "requirements-robot.txt").read_text()
             .splitlines() if line.strip() and not line.startswith("#")}
    for name in sorted(_imported_top_level() - OPTIONAL):
        if name in PIP_ONLY:
            assert name in robot, f"{name} is missing from requirements-robot.txt"
        else:
            key = APT_KEYS.get(name, name)
            assert key in deps, f"the code imports {name}: package.xml needs <exec_depend>{key}</exec_depend>"
    assert "numpy<2" in (ROOT / "requirements-robot.txt").read_text()


def test_no_made_up_rosdep_keys():
    deps = {e.text for e in ET.parse(ROOT / "package.xml").getroot().iter("exec_depend")}
    # *-pip keys exist for a few packages only, and not for Ubuntu in every case: none are used
    assert not [d for d in deps if d.endswith("-pip")], deps
