"""Start planner_node (and, with use_sim:=true, the simulated cell), then configure + activate it.

    ros2 launch ami_world_model planner.launch.py checkpoint:=/path/to/model use_sim:=true namespace:=arm1

A configure or activate that fails is reported and shuts the launch down with exit code 1, so no
unconfigured planner is left running; so does a planner process that exits. Under a namespace the nodes'
relative topics (camera/image_raw, servo_node/delta_twist_cmds, ...), the simulated cell's too, resolve
inside it.
The pip-path equivalent (no launch_ros needed) is `ami-wm run [--sim]`: same nodes, same YAML, one process.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from ami_world_model.ros.params_file import namespace_free_params_file
from launch import LaunchDescription

ARGUMENTS = [  # name, default, description. An empty default keeps the value in config_file.
    ("config_file", None, "planner_node parameters file (ros__parameters YAML); default: the package's"),
    ("namespace", "", "ROS namespace of the planner and the simulated cell (empty: the root namespace)"),
    ("camera_topic", "", "camera sensor_msgs/Image topic (empty: config_file's, camera/image_raw)"),
    ("goal_topic", "", "goal sensor_msgs/Image topic, reliable + transient local (empty: config_file's)"),
    ("output_mode", "", "servo_twist (MoveIt Servo) or joint_trajectory (JTC) (empty: config_file's)"),
    ("checkpoint", "", "world-model checkpoint without extension; relative paths resolve against the "
                       "package share dir (empty: config_file's, models/default)"),
    ("backend", "", "inference backend: auto, torch, onnxruntime or tensorrt (empty: config_file's)"),
    ("use_sim_time", "false", "use /clock (true/false, yes/no, on/off, 1/0; implied by use_sim)"),
    ("use_sim", "false", "also start sim_cell_node, the simulated MuJoCo cell (true/false, yes/no, on/off, 1/0)"),
]
OVERRIDABLE = ("camera_topic", "goal_topic", "output_mode", "checkpoint", "backend")
BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
SIM_GOAL_TOPIC = "sim_cell_node/goal_image"  # the simulated cell's latched goal image, relative: namespaced too


class LaunchArgumentError(ValueError):
    """A launch argument has a value the launch cannot use; the message says which values it takes."""


def parse_bool(name: str, text: str) -> bool:
    """A boolean launch argument; IfCondition would abort on 'yes', so the values are checked here."""
    value = BOOLEANS.get(text.strip().lower())
    if value is None:
        raise LaunchArgumentError(f"launch argument {name}:={text!r} is not a boolean; use one of {sorted(BOOLEANS)}")
    return value


def _nodes(context):
    """Built at launch time so that only the arguments actually given override the YAML."""
    from ami_world_model.node_config import PlannerNodeConfig

    value = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    use_sim = parse_bool("use_sim", value["use_sim"])
    use_sim_time = parse_bool("use_sim_time", value["use_sim_time"]) or use_sim
    namespace = value["namespace"].strip()
    params_file, section = namespace_free_params_file(value["config_file"], namespace)
    overrides = {k: value[k] for k in OVERRIDABLE if value[k]}
    if use_sim and not value["goal_topic"]:
        overrides["goal_topic"] = SIM_GOAL_TOPIC
    overrides["use_sim_time"] = use_sim_time
    planner = LifecycleNode(package="ami_world_model", executable="planner_node", name="planner_node",
                            namespace=namespace, output="screen", parameters=[params_file, overrides],
                            on_exit=OpaqueFunction(function=_shutdown_unless_shutting_down))
    entities = [*_lifecycle_handlers(planner), planner, _change_state(planner, Transition.TRANSITION_CONFIGURE)]
    if use_sim:
        defaults = PlannerNodeConfig()
        # the cell listens where the planner commands (the same topics as in the planner's parameters)
        sim_params = {"use_sim_time": use_sim_time,
                      "twist_topic": section.get("twist_topic", defaults.twist_topic),
                      "trajectory_topic": section.get("trajectory_topic", defaults.trajectory_topic)}
        entities.insert(0, Node(package="ami_world_model", executable="sim_cell_node", name="sim_cell_node",
                                namespace=namespace, output="screen", parameters=[sim_params]))
    return entities


def _shutdown_unless_shutting_down(context):
    # A planner that exits on its own takes the launch down; during a shutdown, a second Shutdown would fail
    # ("Cannot shutdown a ROS adapter that is not running") and turn a clean ^C into exit code 1.
    return None if context.is_shutdown else [Shutdown(reason="planner_node exited")]


def _change_state(planner: LifecycleNode, transition_id: int) -> EmitEvent:
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(planner), transition_id=transition_id))


def _lifecycle_handlers(planner: LifecycleNode) -> list:
    """configure -> activate; a failed configure or activate ends the launch (exit code 1) with the reason."""
    handlers = [RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=planner, start_state="configuring", goal_state="inactive",
        entities=[_change_state(planner, Transition.TRANSITION_ACTIVATE)]))]
    for start, goal in (("configuring", "unconfigured"), ("configuring", "errorprocessing"),
                        ("activating", "inactive"), ("activating", "errorprocessing")):
        handlers.append(RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=planner, start_state=start, goal_state=goal,
            entities=[OpaqueFunction(function=_fail, args=[start, goal])])))
    return handlers


def _fail(context, start: str, goal: str):
    # Raised, not logged: LaunchService reports the message, shuts everything down and returns 1.
    verb = start[:-3] + "e"  # configuring -> configure, activating -> activate
    raise RuntimeError(f"planner_node failed to {verb} ({start} -> {goal}; its log above says why): "
                       f"shutting down rather than leaving it {goal}")


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("ami_world_model")
    args = []
    for name, default, desc in ARGUMENTS:
        if name == "config_file":
            default = os.path.join(share, "config", "planner.yaml")
        args.append(DeclareLaunchArgument(name, default_value=default, description=desc))
    return LaunchDescription(args + [OpaqueFunction(function=_nodes)])
