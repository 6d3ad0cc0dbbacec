"""Reading bags into episodes: timestamp sync with jitter and dropped messages, encodings, frame skip.

The bags are written here with BagWriter/rosbags, each frame's pixels and action carrying its index, so
every assertion checks that frame i was paired with action i (not its neighbour).
"""
import cv2
import numpy as np
import pytest

from ami_world_model.config import ConfigError
from ami_world_model.data.bags import BagError, BagSpec, BagWriter, load_episodes

IMG, ACT, JS = "/cam/image", "/cmd", "/joint_states"
PERIOD = 0.1


def _frame(i: int) -> np.ndarray:
    img = np.zeros((32, 48, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = i % 256, 255 - i % 256, 7  # distinct channels catch RGB/BGR swaps
    return img


def _write(path, n=40, drop_actions=(), drop_images=(), gap_after=None, storage="mcap", jitter=0.012, seed=0):
    """n frames at 10 Hz with +-jitter on every stamp; action i = (i/1000, -i/1000); joint state = i."""
    rng = np.random.default_rng(seed)
    with BagWriter(path, storage=storage) as bag:
        for i in range(n):
            t = 5.0 + i * PERIOD + (2.0 if gap_after is not None and i > gap_after else 0.0)
            if i not in drop_images:
                bag.image(IMG, t + rng.uniform(-jitter, jitter), _frame(i))
            if i not in drop_actions:
                bag.twist_stamped(ACT, t + rng.uniform(-jitter, jitter), (i / 1000, -i / 1000, 0.0))
            bag.joint_state(JS, t + rng.uniform(-jitter, jitter), ["a", "b"], [float(i), 2.0 * i])
    return path


def _index(ep_images):
    return [int(im[0, 0, 0]) for im in ep_images]


def _spec(**kw):
    base = dict(image_topic=IMG, action_topic=ACT, image_size=[32, 48], tolerance_s=0.04)
    base.update(kw)
    return BagSpec(**base)


def test_sync_with_jitter_and_drops_splits_and_pairs_correctly(tmp_path):
    bag = _write(tmp_path / "b", n=40, drop_actions=(7,), drop_images=(15,), gap_after=29)
    es = load_episodes(bag, _spec())
    idx = [_index(e.images) for e in es.episodes]
    # Frame 7 has no action -> dropped, split; image 15 is missing -> split at the hole; 2 s gap after 29.
    assert idx == [list(range(0, 7)), list(range(8, 15)), list(range(16, 30)), list(range(30, 40))]
    for e in es.episodes:
        i = np.array(_index(e.images))
        np.testing.assert_allclose(e.actions[:, 0], i / 1000, atol=1e-6)
        np.testing.assert_allclose(e.actions[:, 1], -i / 1000, atol=1e-6)
        assert e.images.shape[1:] == (32, 48, 3)
        assert np.all(np.diff(e.timestamps) > 0.05)
    assert es.source["frames_dropped"] == 1
    assert es.action_spec.names == ["linear.x", "linear.y"] and es.action_spec.kind == "twist"
    assert es.action_spec.dt_s == pytest.approx(PERIOD, abs=0.01)
    assert es.action_spec.low[0] < es.action_spec.high[0]


def test_state_by_joint_name_and_frame_skip_averages_actions(tmp_path):
    bag = _write(tmp_path / "b", n=21, storage="sqlite3")
    es = load_episodes(bag, _spec(state_topic=JS, state_joints=["b"], frame_skip=3))
    (ep,) = es.episodes
    assert _index(ep.images) == list(range(0, 21, 3))
    np.testing.assert_allclose(ep.states[:, 0], 2.0 * np.arange(0, 21, 3))
    # Kept frame i holds the mean of actions i, i+1, i+2.
    np.testing.assert_allclose(ep.actions[:-1, 0], (np.arange(0, 18, 3) + 1) / 1000, atol=1e-6)
    assert es.state_spec.names == ["b"]
    assert es.action_spec.dt_s == pytest.approx(3 * PERIOD, abs=0.02)


def test_action_box_measured_on_the_model_steps_mean_command(tmp_path):
    """Commands alternating +1 / -1 span [-1, 1] per record, but a 2-record model step only ever sees their
    mean, 0: the data box is the model step's (what the planner may plan), whatever the frames kept."""
    path = tmp_path / "b"
    with BagWriter(path) as bag:
        for i in range(201):
            bag.image(IMG, 5.0 + i * PERIOD, _frame(i))
            bag.twist_stamped(ACT, 5.0 + i * PERIOD, (1.0 if i % 2 == 0 else -1.0, 0.0, 0.0))
    per_record = load_episodes(path, _spec())
    assert per_record.action_spec.low[0] == pytest.approx(-1.0) and per_record.action_spec.high[0] == pytest.approx(1.0)
    every_frame = load_episodes(path, _spec(action_box_skip=2))
    assert len(every_frame.episodes[0]) == 201  # every frame kept, only the box changes
    np.testing.assert_allclose(every_frame.episodes[0].actions[:, 0], per_record.episodes[0].actions[:, 0])
    kept = load_episodes(path, _spec(frame_skip=2))
    for es in (every_frame, kept):
        assert es.action_spec.low[0] == pytest.approx(0.0, abs=1e-6)
        assert es.action_spec.high[0] == pytest.approx(1e-3, abs=1e-6)  # a constant action keeps a range
    with pytest.raises(ConfigError, match="action_box_skip"):
        _spec(frame_skip=2, action_box_skip=3)


def test_encodings_compressed_and_headerless_actions(tmp_path):
    """bgr8 / mono8 / CompressedImage images and geometry_msgs/Twist actions (no header: receive time)."""
    path = tmp_path / "b"
    with BagWriter(path) as bag:
        ty = bag.store.types
        v3 = ty["geometry_msgs/msg/Vector3"]
        for i in range(12):
            t = 1.0 + i * PERIOD
            rgb = _frame(i)
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            bag.write("/bgr", ty["sensor_msgs/msg/Image"](
                header=bag.header(t, "c"), height=32, width=48, encoding="bgr8", is_bigendian=0, step=48 * 3 + 4,
                data=np.pad(bgr.reshape(32, -1), ((0, 0), (0, 4))).reshape(-1)), t)  # padded rows
            bag.write("/mono", ty["sensor_msgs/msg/Image"](
                header=bag.header(t, "c"), height=32, width=48, encoding="mono8", is_bigendian=0, step=48,
                data=np.ascontiguousarray(rgb[..., 0]).reshape(-1)), t)
            ok, png = cv2.imencode(".png", bgr)
            assert ok
            bag.write("/jpeg", ty["sensor_msgs/msg/CompressedImage"](
                header=bag.header(t, "c"), format="png", data=png.reshape(-1)), t)
            bag.write("/twist", ty["geometry_msgs/msg/Twist"](linear=v3(i / 100, 0.0, 0.0), angular=v3(0, 0, 0)),
                      t + 0.005)
    for topic in ("/bgr", "/jpeg"):
        es = load_episodes(path, _spec(image_topic=topic, action_topic="/twist", action_fields=["linear.x"]))
        (ep,) = es.episodes
        assert _index(ep.images) == list(range(12))
        assert np.all(ep.images[:, 0, 0, 1] == 255 - np.arange(12)) and np.all(ep.images[:, 0, 0, 2] == 7)
        np.testing.assert_allclose(ep.actions[:, 0], np.arange(12) / 100, atol=1e-6)
    es = load_episodes(path, _spec(image_topic="/mono", action_topic="/twist", action_fields=["linear.x"],
                                   image_size=[16, 24]))
    assert es.episodes[0].images.shape == (12, 16, 24, 3)  # resized with INTER_AREA
    assert np.all(es.episodes[0].images[3] == 3)


def test_joint_trajectory_actions_by_joint_name(tmp_path):
    path = tmp_path / "b"
    with BagWriter(path) as bag:
        ty = bag.store.types
        for i in range(6):
            t = 2.0 + i * PERIOD
            bag.image(IMG, t, _frame(i))
            pt = ty["trajectory_msgs/msg/JointTrajectoryPoint"](
                positions=np.array([0.0, float(i)]), velocities=np.array([0.5, -float(i)]), accelerations=np.zeros(0),
                effort=np.zeros(0), time_from_start=ty["builtin_interfaces/msg/Duration"](sec=0, nanosec=100_000_000))
            bag.write(ACT, ty["trajectory_msgs/msg/JointTrajectory"](
                header=bag.header(t, ""), joint_names=["j1", "j2"], points=[pt]), t)
    es = load_episodes(path, _spec(action_fields=["points[0].velocities[j2]", "points[0].velocities[0]"],
                                   action_kind="joint_velocity", action_names=["j2", "j1"]))
    np.testing.assert_allclose(es.episodes[0].actions, np.stack([-np.arange(6), 0.5 * np.ones(6)], 1))
    assert es.action_spec.kind == "joint_velocity" and es.action_spec.names == ["j2", "j1"]


def test_clear_errors(tmp_path):
    bag = _write(tmp_path / "b", n=5)
    with pytest.raises(BagError, match="no topic '/nope'.*'/cam/image'"):
        load_episodes(bag, _spec(action_topic="/nope"))
    with pytest.raises(BagError, match="no field"):
        load_episodes(bag, _spec(action_fields=["twist.linear.q"]))
    with pytest.raises(BagError, match="no episode"):
        load_episodes(bag, _spec(action_offset_s=0.5))
    with pytest.raises(BagError, match="no such bag"):
        load_episodes(tmp_path / "missing", _spec())
    with pytest.raises(ConfigError):
        BagSpec(action_fields=[])
    with pytest.raises(FileExistsError):
        BagWriter(bag)
