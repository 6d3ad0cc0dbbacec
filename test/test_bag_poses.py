"""PoseStamped topics -> Episode.targets: pairing with frames (jitter, drops, frame skip), names and errors.

Pose i is (i / 100, -i / 100) on the tool topic and (2 i, 3) on the block topic, so every assertion checks that
frame i got pose i, not a neighbour's.
"""
import numpy as np
import pytest

from ami_world_model.config import ConfigError
from ami_world_model.data.bags import BagError, BagSpec, BagWriter, load_episodes, pose_name_from_topic

IMG, ACT, TOOL, BLOCK = "/cam/image", "/cmd", "/tool_pose", "/tracker/blk"
PERIOD = 0.1


def _frame(i: int) -> np.ndarray:
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = i
    return img


def _write(path, n=20, drop_poses=(), jitter=0.012, seed=0):
    rng = np.random.default_rng(seed)
    j = lambda: rng.uniform(-jitter, jitter)  # noqa: E731
    with BagWriter(path) as bag:
        for i in range(n):
            t = 3.0 + i * PERIOD
            bag.image(IMG, t + j(), _frame(i))
            bag.twist_stamped(ACT, t + j(), (i / 1000, 0.0, 0.0))
            if i not in drop_poses:
                bag.pose_stamped(TOOL, t + j(), (i / 100, -i / 100, 0.05))
            bag.pose_stamped(BLOCK, t + j(), (2.0 * i, 3.0, 0.02), (0.0, 0.0, 0.0, 1.0), frame_id="world")
    return path


def _spec(**kw):
    base = dict(image_topic=IMG, action_topic=ACT, image_size=[16, 16], tolerance_s=0.04)
    base.update(kw)
    return BagSpec(**base)


def _index(ep):
    return np.array([int(im[0, 0, 0]) for im in ep.images])


def test_pose_targets_pair_with_their_frames_and_a_missing_pose_splits(tmp_path):
    bag = _write(tmp_path / "b", drop_poses=(8,))
    es = load_episodes(bag, _spec(pose_topics=[TOOL, BLOCK]))
    assert es.target_names == ["tool.x", "tool.y", "blk.x", "blk.y"]
    assert [list(_index(e)) for e in es.episodes] == [list(range(8)), list(range(9, 20))]  # frame 8: no tool pose
    for ep in es.episodes:
        i = _index(ep)
        assert ep.targets.dtype == np.float32 and ep.targets.shape == (len(ep), 4)
        np.testing.assert_allclose(ep.targets, np.stack([i / 100, -i / 100, 2.0 * i, 3.0 + 0 * i], 1), atol=1e-6)
    assert es.source["frames_dropped"] == 1 and es.source["pose_topics"] == [TOOL, BLOCK]
    assert es.summary()["target_names"] == es.target_names


def test_frame_skip_keeps_the_pose_of_each_kept_frame(tmp_path):
    es = load_episodes(_write(tmp_path / "b", n=13), _spec(pose_topics=[BLOCK], pose_names=["cube"], frame_skip=3))
    (ep,) = es.episodes
    assert list(_index(ep)) == [0, 3, 6, 9, 12]
    np.testing.assert_allclose(ep.targets, [[0, 3], [6, 3], [12, 3], [18, 3], [24, 3]], atol=1e-6)  # not averaged
    assert es.target_names == ["cube.x", "cube.y"]


def test_no_pose_topics_means_no_targets(tmp_path):
    es = load_episodes(_write(tmp_path / "b", n=5), _spec())
    assert es.target_names == [] and all(e.targets is None for e in es.episodes)
    assert es.summary()["target_names"] == []


def test_pose_topic_errors(tmp_path):
    bag = _write(tmp_path / "b", n=5)
    with pytest.raises(BagError, match="no topic '/nope_pose'"):
        load_episodes(bag, _spec(pose_topics=["/nope_pose"]))
    with pytest.raises(BagError, match=r"/cmd is geometry_msgs/msg/TwistStamped, expected one of .*PoseStamped"):
        load_episodes(bag, _spec(pose_topics=[ACT]))
    empty = tmp_path / "empty"
    with BagWriter(empty) as w:
        for i in range(4):
            w.image(IMG, 1.0 + i * PERIOD, _frame(i))
            w.twist_stamped(ACT, 1.0 + i * PERIOD, (0.0, 0.0, 0.0))
        # A recorded topic that never got a message (the tracker never saw the marker).
        w._writer.add_connection(TOOL, "geometry_msgs/msg/PoseStamped", typestore=w.store)
    with pytest.raises(BagError, match="no messages on pose topic /tool_pose"):
        load_episodes(empty, _spec(pose_topics=[TOOL]))


def test_pose_names_derived_and_checked():
    assert pose_name_from_topic("/block_pose") == "block"
    assert pose_name_from_topic("/tool_pose") == "tool"
    assert pose_name_from_topic("/tracker/marker_3/") == "marker_3"
    assert pose_name_from_topic("tool") == "tool"
    assert BagSpec(pose_topics=["/a/tool_pose", "/b_pose"]).target_names() == ["tool.x", "tool.y", "b.x", "b.y"]
    assert BagSpec(pose_topics=["/x", "/y"], pose_names=["p", "q"]).target_names() == ["p.x", "p.y", "q.x", "q.y"]
    with pytest.raises(ConfigError, match="one to one"):
        BagSpec(pose_topics=["/tool_pose"], pose_names=["a", "b"])
    with pytest.raises(ConfigError, match="unique"):
        BagSpec(pose_topics=["/a/tool_pose", "/b/tool"])  # both derive "tool"
    with pytest.raises(ConfigError, match="unique"):
        BagSpec(pose_topics=["/a", "/b"], pose_names=["p", "p"])
    with pytest.raises(ConfigError, match="unique and non-empty"):
        BagSpec(pose_topics=["/_pose"])
    with pytest.raises(ConfigError, match="duplicates"):
        BagSpec(pose_topics=["/tool_pose", "/tool_pose"])


def test_pose_stamped_writer_checks_its_arguments(tmp_path):
    with BagWriter(tmp_path / "b") as w, pytest.raises(ValueError, match="xyz"):
        w.pose_stamped(TOOL, 1.0, (0.1, 0.2))
