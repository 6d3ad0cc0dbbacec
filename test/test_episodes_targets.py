"""Episode.targets / EpisodeSet.target_names: validation, npz round trip, and older files without targets."""
import json

import numpy as np
import pytest

from ami_world_model.config import ActionSpec, to_dict
from ami_world_model.data.episodes import Episode, EpisodeSet

NAMES = ["tool.x", "tool.y", "block.x", "block.y"]


def _episode(t=5, p=4, seed=0):
    rng = np.random.default_rng(seed)
    return Episode(images=rng.integers(0, 255, (t, 8, 8, 3), dtype=np.uint8),
                   actions=rng.normal(size=(t, 2)).astype(np.float32),
                   targets=None if p == 0 else rng.normal(size=(t, p)).astype(np.float32))


def test_targets_round_trip_through_npz(tmp_path):
    es = EpisodeSet([_episode(5, seed=1), _episode(7, seed=2)], ActionSpec(), target_names=NAMES)
    es.save(tmp_path / "d.npz")
    back = EpisodeSet.load(tmp_path / "d.npz")
    assert back.target_names == NAMES and back.summary()["target_names"] == NAMES
    for a, b in zip(es.episodes, back.episodes):
        assert b.targets.dtype == np.float32
        np.testing.assert_array_equal(a.targets, b.targets)


def test_set_without_targets_and_older_files_load_with_none(tmp_path):
    es = EpisodeSet([_episode(4, p=0)], ActionSpec())
    es.save(tmp_path / "none.npz")
    back = EpisodeSet.load(tmp_path / "none.npz")
    assert back.target_names == [] and back.episodes[0].targets is None
    # A file written before targets existed: no e0_targets array and no target_names in the metadata.
    meta = {"format_version": 1, "count": 1, "action_spec": to_dict(ActionSpec()), "state_spec": {"names": []},
            "source": {"sim": True}}
    ep = _episode(3, p=0)
    np.savez_compressed(tmp_path / "old.npz", e0_images=ep.images, e0_actions=ep.actions,
                        meta_json=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    old = EpisodeSet.load(tmp_path / "old.npz")
    assert old.target_names == [] and old.episodes[0].targets is None and len(old.episodes[0]) == 3


def test_targets_are_validated():
    with pytest.raises(ValueError, match=r"targets must be \[T=5,P\]"):
        Episode(images=np.zeros((5, 8, 8, 3), np.uint8), actions=np.zeros((5, 2), np.float32),
                targets=np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected \[T, 2\]"):
        EpisodeSet([_episode(4, p=4)], ActionSpec(), target_names=["a.x", "a.y"])
    with pytest.raises(ValueError, match="target_names is empty"):
        EpisodeSet([_episode(4, p=4)], ActionSpec())
    with pytest.raises(ValueError, match=r"targets None"):
        EpisodeSet([_episode(4, p=4), _episode(4, p=0)], ActionSpec(), target_names=NAMES)
    with pytest.raises(ValueError, match="duplicates"):
        EpisodeSet([], ActionSpec(), target_names=["a.x", "a.x"])
