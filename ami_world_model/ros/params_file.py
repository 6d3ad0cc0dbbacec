"""The planner's parameters file under a namespace, for the launch file and `ami-wm run --namespace` alike.

A file keyed by the plain node name (``planner_node:``) is silently ignored by a namespaced node; one keyed
``/**:`` (config/planner.yaml) applies in any namespace. No rclpy here: the launch file imports it too.
"""
from __future__ import annotations

import tempfile
from typing import Tuple

import yaml

# YAML keys whose parameters apply to planner_node in any namespace; plain node names apply only at the root.
NAMESPACE_FREE_KEYS = ("/**", "/**/planner_node")
ROOT_ONLY_KEYS = ("planner_node", "/planner_node")


class ParamsFileError(ValueError):
    """The parameters file has no section the planner would read."""


def planner_section(params: dict) -> Tuple[str, dict]:
    """(key, ros__parameters) of the planner's section in a parameters file, preferring namespace-free keys."""
    for key in NAMESPACE_FREE_KEYS + ROOT_ONLY_KEYS:
        section = params.get(key)
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            return key, section["ros__parameters"]
    raise ParamsFileError(f"no planner_node section in the parameters file; expected one of the keys "
                          f"{list(NAMESPACE_FREE_KEYS + ROOT_ONLY_KEYS)} with ros__parameters")


def namespace_free_params_file(path: str, namespace: str) -> Tuple[str, dict]:
    """(file the planner can load in ``namespace``, its ros__parameters).

    Under a namespace a file keyed by the node name is rewritten to a temporary copy keyed ``/**:``; other
    files are used as they are.
    """
    with open(path) as f:
        params = yaml.safe_load(f) or {}
    key, section = planner_section(params)
    if key in NAMESPACE_FREE_KEYS or not namespace.strip("/"):
        return path, section
    with tempfile.NamedTemporaryFile("w", prefix="planner_params_", suffix=".yaml", delete=False) as out:
        yaml.safe_dump({"/**": {"ros__parameters": section}}, out)
    return out.name, section
