"""Start planner_node (and, with use_sim:=true, the simulated cell), then configure + activate it.

    ros2 launch ami_world_model planner.launch.py checkpoint:=/path/to/model use_sim:=true

The pip-path equivalent (no launch_ros needed) is `ami-wm run [--sim]`: same nodes, same YAML, one process.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription

ARGUMENTS = [  # name, default, description. An empty default keeps the value in config_file.
    ("config_file", None, "planner_node parameters file (ros__parameters YAML); default: the package's"),
    ("camera_topic", "", "camera sensor_msgs/Image topic (empty: config_file's, /camera/image_raw)"),
    ("goal_topic", "", "goal sensor_msgs/Image topic, reliable + transient local (empty: config_file's)"),
    ("output_mode", "", "servo_twist (MoveIt Servo) or joint_trajectory (JTC) (empty: config_file's)"),
    ("checkpoint", "", "world-model checkpoint without extension; relative paths resolve against the "
                       "package share dir (empty: config_file's, models/default)"),
    ("backend", "", "inference backend: auto, torch, onnxruntime or tensorrt (empty: config_file's)"),
    ("use_sim_time", "false", "use /clock (set true with the simulated cell)"),
    ("use_sim", "false", "also start sim_cell_node (the simulated MuJoCo cell)"),
]
OVERRIDABLE = ("camera_topic", "goal_topic", "output_mode", "checkpoint", "backend")


def _nodes(context):
    """Built at launch time so that only the arguments actually given override the YAML."""
    value = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    use_sim_time = value["use_sim_time"].lower() in ("true", "1", "yes")
    overrides = {k: value[k] for k in OVERRIDABLE if value[k]}
    if value["use_sim"].lower() in ("true", "1", "yes") and not value["goal_topic"]:
        overrides["goal_topic"] = "/sim_cell_node/goal_image"  # the simulated cell's latched goal image
    overrides["use_sim_time"] = use_sim_time
    planner = LifecycleNode(package="ami_world_model", executable="planner_node", name="planner_node",
                            namespace="", output="screen", parameters=[value["config_file"], overrides])
    sim = Node(package="ami_world_model", executable="sim_cell_node", name="sim_cell_node", output="screen",
               parameters=[{"use_sim_time": use_sim_time}], condition=IfCondition(value["use_sim"]))
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(planner),
                                            transition_id=Transition.TRANSITION_CONFIGURE))
    activate_when_inactive = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=planner, start_state="configuring", goal_state="inactive",
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(planner),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    return [sim, activate_when_inactive, planner, configure]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("ami_world_model")
    args = []
    for name, default, desc in ARGUMENTS:
        if name == "config_file":
            default = os.path.join(share, "config", "planner.yaml")
        args.append(DeclareLaunchArgument(name, default_value=default, description=desc))
    return LaunchDescription(args + [OpaqueFunction(function=_nodes)])
