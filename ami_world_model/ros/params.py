"""ROS parameters <-> PlannerNodeConfig: declare each parameter (dotted names for the nested PlannerConfig,
``planner.num_samples``) with its description and range from ``parameter_table()``, read them back, validate
sets."""
from __future__ import annotations

import typing
from typing import Any, Callable, Dict

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from ami_world_model.config import ConfigError
from ami_world_model.node_config import ParamRow, PlannerNodeConfig, parameter_table

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
_ARRAYS = {str: ParameterType.PARAMETER_STRING_ARRAY, float: ParameterType.PARAMETER_DOUBLE_ARRAY}
_EMPTY = {ParameterType.PARAMETER_STRING_ARRAY: Parameter.Type.STRING_ARRAY,
          ParameterType.PARAMETER_DOUBLE_ARRAY: Parameter.Type.DOUBLE_ARRAY}


def _ptype(tp: Any) -> int:
    if typing.get_origin(tp) in (list, typing.List):
        return _ARRAYS[typing.get_args(tp)[0]]
    return _TYPES[tp]


def descriptor(row: ParamRow) -> ParameterDescriptor:
    """ParameterDescriptor of one parameter (description, type, range, choices)."""
    ptype = _ptype(row.type)
    d = ParameterDescriptor(name=row.name, type=ptype, description=row.description)
    if row.choices:
        d.additional_constraints = "one of: " + ", ".join(row.choices)
    rng = row.range
    if rng is not None and ptype == ParameterType.PARAMETER_DOUBLE:
        d.floating_point_range = [FloatingPointRange(from_value=float(rng[0]), to_value=float(rng[1]), step=0.0)]
    elif rng is not None and ptype == ParameterType.PARAMETER_INTEGER:
        d.integer_range = [IntegerRange(from_value=int(rng[0]), to_value=int(rng[1]), step=1)]
    return d


def declare_parameters(node: Node) -> None:
    """Declare every parameter (YAML / --ros-args overrides apply here)."""
    for row in parameter_table():
        desc = descriptor(row)
        if isinstance(row.default, list) and not row.default:
            # rclpy cannot infer a type from an empty list: declare it statically typed, unset
            node.declare_parameter(row.name, _EMPTY[desc.type], desc)
        else:
            node.declare_parameter(row.name, row.default, desc)


def _plain(v: Any) -> Any:
    if v is None:  # an unset array
        return []
    return list(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else v


def read_values(node: Node) -> Dict[str, Any]:
    values: Dict[str, Any] = {}
    for row in parameter_table():
        try:
            v = node.get_parameter(row.name).value
        except ParameterUninitializedException:  # a statically typed parameter nobody set
            v = None
        values[row.name] = _plain(v)
    return values


def read_config(node: Node) -> PlannerNodeConfig:
    """The node's current parameters as a validated PlannerNodeConfig (ConfigError when invalid)."""
    return PlannerNodeConfig.from_params(read_values(node))


def install_validation(node: Node, configured: Callable[[], bool],
                       apply_live: Callable[[PlannerNodeConfig], None]) -> None:
    """Refuse parameter changes that PlannerNodeConfig would reject (ranges, choices, cross-field rules).

    While the node is configured, a set of a live parameter (``live=True`` in its ``param()``: the safety
    limits, watchdog ages, goal and unsure-stop settings) is applied at once through ``apply_live``; a set of
    any other parameter is refused with the reason (it is read at configure: cleanup, set, configure), so
    ``ros2 param set`` never reports success for a value the node does not use.
    """
    live = {row.name for row in parameter_table() if row.live}

    def check(params) -> SetParametersResult:
        current = read_values(node)
        try:
            PlannerNodeConfig.from_params(current)
        except (ConfigError, TypeError):
            current = PlannerNodeConfig().to_params()  # current values already invalid: judge the new
        values = dict(current)
        for p in params:
            if p.name in values:
                values[p.name] = _plain(p.value)
        try:
            cfg = PlannerNodeConfig.from_params(values)
        except (ConfigError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if configured():
            static = sorted(p.name for p in params if p.name in values and p.name not in live
                            and values[p.name] != current[p.name])
            if static:
                return SetParametersResult(successful=False, reason=(
                    f"{static} are read at configure time: deactivate + cleanup, set, then configure again "
                    f"(applied live: {sorted(live)})"))
            apply_live(cfg)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check)
