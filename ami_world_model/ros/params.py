"""ROS parameters <-> PlannerNodeConfig: declare each field with its description and range, read them back."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Dict

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from ami_world_model.node_config import PlannerNodeConfig

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


def _ptype(tp: Any) -> int:
    if typing.get_origin(tp) in (list, typing.List):
        return ParameterType.PARAMETER_STRING_ARRAY
    return _TYPES[tp]


def descriptor(f: dataclasses.Field, tp: Any) -> ParameterDescriptor:
    """ParameterDescriptor of one PlannerNodeConfig field (description, type, range, choices)."""
    ptype = _ptype(tp)
    d = ParameterDescriptor(name=f.name, type=ptype, description=f.metadata["description"])
    if f.metadata["choices"]:
        d.additional_constraints = "one of: " + ", ".join(f.metadata["choices"])
    rng = f.metadata["range"]
    if rng is not None and ptype == ParameterType.PARAMETER_DOUBLE:
        d.floating_point_range = [FloatingPointRange(from_value=float(rng[0]), to_value=float(rng[1]), step=0.0)]
    elif rng is not None and ptype == ParameterType.PARAMETER_INTEGER:
        d.integer_range = [IntegerRange(from_value=int(rng[0]), to_value=int(rng[1]), step=1)]
    return d


def declare_parameters(node: Node) -> None:
    """Declare every PlannerNodeConfig field as a parameter (YAML / --ros-args overrides apply here)."""
    hints = typing.get_type_hints(PlannerNodeConfig)
    defaults = PlannerNodeConfig()
    for f in dataclasses.fields(PlannerNodeConfig):
        value = getattr(defaults, f.name)
        desc = descriptor(f, hints[f.name])
        if isinstance(value, list) and not value:
            # rclpy cannot infer a type from an empty list: declare it statically typed, unset
            node.declare_parameter(f.name, Parameter.Type.STRING_ARRAY, desc)
        else:
            node.declare_parameter(f.name, value, desc)


def read_config(node: Node) -> PlannerNodeConfig:
    """The node's current parameters as a validated PlannerNodeConfig (ConfigError when invalid)."""
    values: Dict[str, Any] = {}
    for f in dataclasses.fields(PlannerNodeConfig):
        try:
            v = node.get_parameter(f.name).value
        except ParameterUninitializedException:  # a statically typed parameter nobody set
            v = None
        if v is None:  # an unset string array
            v = []
        elif isinstance(v, (list, tuple)):
            v = list(v)
        values[f.name] = v
    return PlannerNodeConfig.from_params(values)


def install_validation(node: Node) -> None:
    """Refuse parameter changes that PlannerNodeConfig would reject (choices, cross-field rules)."""
    from rcl_interfaces.msg import SetParametersResult

    from ami_world_model.config import ConfigError

    def check(params) -> SetParametersResult:
        try:
            values = dataclasses.asdict(read_config(node))
        except ConfigError:
            values = dataclasses.asdict(PlannerNodeConfig())  # current values already invalid: judge the new
        for p in params:
            if p.name in values:
                values[p.name] = [] if p.value is None else (list(p.value) if isinstance(p.value, (list, tuple))
                                                             else p.value)
        try:
            PlannerNodeConfig.from_params(values)
        except (ConfigError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check)
