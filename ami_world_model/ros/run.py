"""`ami-wm run`: planner_node (and the simulated cell with --sim) in one process — the pip-path launch.

The equivalent of ``ros2 launch ami_world_model planner.launch.py`` for installs without launch_ros: the
same nodes and the same YAML, composed by hand on rclpy executors in one process; the planner is
configured and activated here, as the launch file does with lifecycle events. A configure or activate that
fails is logged and the command exits 1 (no unconfigured planner is left running), as the launch does.

    ami-wm run --sim --namespace arm1 --checkpoint models/default --param control_rate_hz:=10.0
"""
from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Any, List, Optional

import yaml

REPO = Path(__file__).resolve().parents[2]
SIM_GOAL_TOPIC = "sim_cell_node/goal_image"  # sim_cell_node's latched goal image (~/goal_image), namespaced too


def default_config() -> Path:
    """config/planner.yaml: the package share dir when installed by colcon, else the repository's."""
    from ami_world_model.ros.planner_node import package_share_dir

    share = package_share_dir()
    if share is not None and (share / "config" / "planner.yaml").exists():
        return share / "config" / "planner.yaml"
    return REPO / "config" / "planner.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="planner_node parameters YAML "
                   "(default: config/planner.yaml of the install or the repository)")
    p.add_argument("--sim", action="store_true", help="also start sim_cell_node (the simulated cell)")
    p.add_argument("--namespace", default="", help="ROS namespace of the planner and the simulated cell "
                   "(empty: the root namespace); relative topics resolve inside it")
    p.add_argument("--checkpoint", default=None, help="world-model checkpoint (overrides the YAML)")
    p.add_argument("--backend", default=None, help="auto | torch | onnxruntime | tensorrt")
    p.add_argument("--output-mode", default=None, help="servo_twist | joint_trajectory")
    p.add_argument("--camera-topic", default=None, help="camera sensor_msgs/Image topic")
    p.add_argument("--goal-topic", default=None, help="goal sensor_msgs/Image topic")
    p.add_argument("--use-sim-time", action="store_true", help="use /clock (implied by --sim)")
    p.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="planner_node parameter override (YAML value), repeatable")
    p.add_argument("--no-activate", action="store_true", help="leave the planner unconfigured")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: run until ^C)")


def parse_overrides(args: argparse.Namespace) -> List[Any]:
    """The planner's parameter overrides: named flags first, then --param (later wins)."""
    from rclpy.parameter import Parameter

    values = {}
    for flag, name in (("checkpoint", "checkpoint"), ("backend", "backend"), ("output_mode", "output_mode"),
                       ("camera_topic", "camera_topic"), ("goal_topic", "goal_topic")):
        if getattr(args, flag) is not None:
            values[name] = getattr(args, flag)
    for item in args.param:
        if ":=" not in item:
            raise SystemExit(f"--param expects NAME:=VALUE, got {item!r}")
        name, raw = item.split(":=", 1)
        values[name.strip()] = yaml.safe_load(raw) if raw else ""
    return [Parameter(k, value=v) for k, v in values.items()]


def main(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from ami_world_model.ros.params_file import namespace_free_params_file
    from ami_world_model.ros.planner_node import PlannerNode, init_keeping_context

    config = args.config or default_config()
    if not config.exists():
        print(f"parameters file {config} not found")
        return 2
    try:  # a file keyed `planner_node:` would be silently ignored under a namespace (as in the launch file)
        params_file, _ = namespace_free_params_file(str(config), args.namespace)
    except (OSError, ValueError) as exc:
        print(f"parameters file {config}: {exc}")
        return 2
    sim_time = bool(args.use_sim_time or args.sim)
    stop = init_keeping_context(["--ros-args", "--params-file", params_file])  # outlives ^C: the stop zero goes out
    # The planner spins on its own single-threaded executor in a background thread, as `planner_node` does
    # on its main thread: on 2 cores rclpy's MultiThreadedExecutor starved its camera subscription (it took 47 of
    # 300 frames at 30 Hz where the single-threaded one took 233). The sim node spins here, on the main
    # thread that created it: its MuJoCo EGL context is bound to that thread.
    planner_exec = SingleThreadedExecutor()
    sim_exec = SingleThreadedExecutor()
    planner, sim, rc = None, None, 0
    thread = threading.Thread(target=planner_exec.spin, daemon=True)
    try:
        # With the simulated cell, its latched goal image is the goal unless --goal-topic/--param says otherwise.
        sim_goal = [Parameter("goal_topic", value=SIM_GOAL_TOPIC)] if args.sim else []
        overrides = sim_goal + parse_overrides(args) + [Parameter("use_sim_time", value=sim_time)]
        planner = PlannerNode(namespace=args.namespace, parameter_overrides=overrides)
        planner_exec.add_node(planner)
        if args.sim:
            from ami_world_model.ros.sim_cell_node import SimCellNode

            # the cell listens where the planner commands, as in the launch file
            topics = [Parameter(n, value=planner.get_parameter(n).value) for n in ("twist_topic", "trajectory_topic")]
            sim = SimCellNode(namespace=args.namespace,
                              parameter_overrides=[Parameter("use_sim_time", value=sim_time), *topics])
            sim_exec.add_node(sim)
        thread.start()
        if not args.no_activate:
            if planner.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                planner.get_logger().error("configure failed (see above); exiting")
                return 1
            if stop.is_set():  # ^C while the model loaded: exit without ever commanding
                return rc
            if planner.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                planner.get_logger().error("activate failed; exiting")
                return 1
            planner.get_logger().info("planner_node active")
        end = time.monotonic() + args.duration if args.duration > 0 else None
        while rclpy.ok() and not stop.is_set() and (end is None or time.monotonic() < end) and thread.is_alive():
            if sim is not None:
                sim_exec.spin_once(timeout_sec=0.05)
            else:
                stop.wait(0.05)
        if not thread.is_alive():
            planner.get_logger().error("the planner executor stopped unexpectedly")
            rc = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if planner is not None:
            planner.stop_for_exit()
        planner_exec.shutdown(timeout_sec=2.0)
        sim_exec.shutdown(timeout_sec=2.0)
        if thread.is_alive():
            thread.join(timeout=5.0)  # a native thread still spinning at exit aborts the process
        for n in (planner, sim):
            if n is not None:
                n.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return rc


def run_cli(argv: Optional[List[str]] = None) -> int:
    """Entry for `python -m ami_world_model.ros.run`."""
    p = argparse.ArgumentParser(prog="ami-wm run", description=__doc__)
    add_arguments(p)
    return main(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(run_cli())
