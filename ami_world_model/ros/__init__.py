"""The rclpy side: message conversions, planner_node, sim_cell_node, `ami-wm run`."""
import os


def private_domain_id() -> int:
    """A DDS domain of this process's own (150-229) for the eval and the bench: their planner, sim and
    commands must never meet a live robot's graph, nor another run's."""
    return 150 + os.getpid() % 80
