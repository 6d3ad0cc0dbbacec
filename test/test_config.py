"""Strict config conversion and the shared specs."""
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import pytest

from ami_world_model.config import ActionSpec, ConfigError, ImageSpec, StateSpec, from_dict, to_dict
from ami_world_model.data.episodes import Episode, EpisodeSet


@dataclass
class _Inner:
    a: float = 1.0


@dataclass
class _Outer:
    inner: _Inner = field(default_factory=_Inner)
    names: List[str] = field(default_factory=list)
    maybe: Optional[int] = None


def test_from_dict_round_trip_and_coercion():
    obj = from_dict(_Outer, {"inner": {"a": 3}, "names": ["x"], "maybe": 4})
    assert obj.inner.a == 3.0 and isinstance(obj.inner.a, float)
    assert from_dict(_Outer, to_dict(obj)) == obj


def test_from_dict_names_unknown_keys():
    with pytest.raises(ConfigError, match=r"inner: unknown key\(s\) \['b'\]"):
        from_dict(_Outer, {"inner": {"b": 1}})


def test_action_spec_validation():
    with pytest.raises(ConfigError, match="low"):
        ActionSpec(low=[0.1, 0.1], high=[-0.1, 0.1])
    with pytest.raises(ConfigError, match="twist component"):
        ActionSpec(names=["linear.q", "linear.y"])
    with pytest.raises(ConfigError, match="std has 1"):
        ActionSpec(std=[1.0])
    assert ActionSpec().dim == 2
    with pytest.raises(ConfigError):
        ImageSpec(channels=1)


def test_episode_set_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    eps = [
        Episode(images=rng.integers(0, 255, (5, 8, 8, 3), dtype=np.uint8),
                actions=rng.normal(size=(5, 2)).astype(np.float32),
                states=rng.normal(size=(5, 3)).astype(np.float32),
                timestamps=np.arange(5) * 0.1),
        Episode(images=rng.integers(0, 255, (3, 8, 8, 3), dtype=np.uint8),
                actions=rng.normal(size=(3, 2)).astype(np.float32)),
    ]
    es = EpisodeSet(eps, ActionSpec(), StateSpec(names=["a", "b", "c"], mean=[0] * 3, std=[1] * 3), {"seed": 1})
    es.save(tmp_path / "d.npz")
    back = EpisodeSet.load(tmp_path / "d.npz")
    assert back.action_spec == es.action_spec and back.state_spec == es.state_spec
    assert back.summary() == es.summary()
    for a, b in zip(eps, back.episodes):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.actions, b.actions)
    assert back.episodes[1].states is None


def test_episode_rejects_bad_shapes():
    with pytest.raises(ValueError, match="actions"):
        Episode(images=np.zeros((4, 8, 8, 3), np.uint8), actions=np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        Episode(images=np.zeros((4, 8, 8, 3), np.float32), actions=np.zeros((4, 2), np.float32))
