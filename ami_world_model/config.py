"""Specs shared by every part of the package, and strict dataclass <-> dict conversion.

Each area keeps its own config dataclass next to its code (``models/config.py``,
``planning/config.py``, ``sim/config.py``, ``node_config.py``); they all build on the
helpers here so a misspelt key is an error, never silently ignored.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Type, TypeVar

T = TypeVar("T")


# Inference backends, the one list: the node, `ami-wm eval`/`demo` and inference.make_backend.
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message names it."""


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value, where)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _coerce(non_none[0], value, where)
    if origin in (list, List):
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin in (tuple, typing.Tuple):
        return tuple(value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def from_dict(cls: Type[T], data: Dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys raise ConfigError naming them."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where or cls.__name__}: unknown key(s) {unknown}; valid keys are {sorted(names)}"
        )
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def param(default: Any, description: str, *, lo: Optional[float] = None, hi: Optional[float] = None,
          choices: Optional[Sequence[str]] = None, live: bool = False) -> Any:
    """A dataclass field carrying what a ROS parameter descriptor needs (description, range, choices).

    ``live``: the node applies a change at once; otherwise the value is read at configure time and the node
    refuses a change while configured (see ros/params.py).
    """
    meta = {"description": description, "range": (lo, hi) if lo is not None else None,
            "choices": tuple(choices) if choices else None, "live": live}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def check_params(obj: Any) -> None:
    """Raise ConfigError for a ``param()`` field outside its range or choices (the class name leads)."""
    owner = type(obj).__name__
    for f in dataclasses.fields(obj):
        if "description" not in f.metadata:
            continue
        value = getattr(obj, f.name)
        rng = f.metadata["range"]
        if rng is not None:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and rng[0] <= value <= rng[1]
            if not ok:
                raise ConfigError(f"{owner}.{f.name}={value!r} outside [{rng[0]}, {rng[1]}]")
        choices = f.metadata["choices"]
        if choices and value not in choices:
            raise ConfigError(f"{owner}.{f.name}={value!r} must be one of {list(choices)}")


def to_dict(obj: Any) -> Dict[str, Any]:
    """Plain-JSON dict of a dataclass (tuples become lists)."""
    return json_ready(dataclasses.asdict(obj))


def json_ready(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_ready(v) for v in x]
    return x


@dataclass
class ActionSpec:
    """What an action vector means, in physical units; comes from the training data.

    ``kind`` says what a controller does with it:
      - "twist": components of a Cartesian velocity, ``names`` drawn from
        linear.x, linear.y, linear.z, angular.x, angular.y, angular.z (m/s, rad/s);
      - "joint_velocity": one entry per joint in ``names`` (rad/s or m/s).
    ``mean``/``std`` normalise actions for the network; ``low``/``high`` bound the planner.
    """

    kind: str = "twist"
    names: List[str] = field(default_factory=lambda: ["linear.x", "linear.y"])
    low: List[float] = field(default_factory=lambda: [-0.1, -0.1])
    high: List[float] = field(default_factory=lambda: [0.1, 0.1])
    mean: List[float] = field(default_factory=lambda: [0.0, 0.0])
    std: List[float] = field(default_factory=lambda: [0.05, 0.05])
    frame_id: str = "base_link"  # frame of twist actions
    dt_s: float = 0.1  # time one action is held (the control period the data was recorded at)

    def __post_init__(self) -> None:
        if self.kind not in ("twist", "joint_velocity"):
            raise ConfigError(f"ActionSpec.kind must be 'twist' or 'joint_velocity', got {self.kind!r}")
        n = len(self.names)
        for key in ("low", "high", "mean", "std"):
            if len(getattr(self, key)) != n:
                raise ConfigError(f"ActionSpec.{key} has {len(getattr(self, key))} entries, names has {n}")
        if any(lo >= hi for lo, hi in zip(self.low, self.high)):
            raise ConfigError(f"ActionSpec: low {self.low} must be below high {self.high}")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"ActionSpec.std must be positive, got {self.std}")
        if self.kind == "twist":
            valid = {f"{a}.{c}" for a in ("linear", "angular") for c in "xyz"}
            bad = [x for x in self.names if x not in valid]
            if bad:
                raise ConfigError(f"ActionSpec: twist component(s) {bad} not in {sorted(valid)}")

    @property
    def dim(self) -> int:
        return len(self.names)


@dataclass
class ImageSpec:
    """The model's input image: RGB, ``height`` x ``width``, values in [0, 1] then normalised."""

    height: int = 64
    width: int = 64
    channels: int = 3
    mean: List[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: List[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0 or self.channels != 3:
            raise ConfigError(f"ImageSpec: need positive size and 3 channels, got {self}")


@dataclass
class StateSpec:
    """Proprioceptive state (joint positions, ...); ``names`` empty means the model uses none."""

    names: List[str] = field(default_factory=list)
    mean: List[float] = field(default_factory=list)
    std: List[float] = field(default_factory=list)

    @property
    def dim(self) -> int:
        return len(self.names)

