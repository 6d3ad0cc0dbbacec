"""The planner node's logic without ROS: what the node does, minus messages and callbacks.

- ``engine.py``    PlanningEngine: backend + planner + goal + history + surprise (the model side);
- ``commander.py`` Commander: inputs, safety decisions, command forming and limits, stop handling, status.

``ros/planner_node.py`` wraps a Commander in rclpy (QoS, message conversion, lifecycle). Here, not in
``planning/``, because it composes the planner with inference and safety: a layer above the optimiser.
"""
