"""The planner node's QoS profiles; clients (the eval harness, the node bench, tests) use the same ones.
ROS_NOTES.md says why each is what it is."""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

SENSOR_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT,
                        durability=DurabilityPolicy.VOLATILE)  # qos_profile_sensor_data with depth 1
LATCHED_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)  # goal, e-stop, safety state
COMMAND_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)  # Servo / JTC subscribe reliable
ESTOP_QOS = COMMAND_QOS  # reliable + volatile: accepts volatile and transient-local publishers
STATUS_QOS = COMMAND_QOS  # every status counts for a client matching commands to frames
