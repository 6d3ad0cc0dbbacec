"""`ami-wm collect` writes a bag that plain rosbags reads back with the expected topics, types and counts."""
import json

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from ami_world_model import cli
from ami_world_model.data.bags import BagSpec, load_episodes, typestore

EXPECTED = {
    "/camera/image_raw": "sensor_msgs/msg/Image",
    "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
    "/joint_states": "sensor_msgs/msg/JointState",
    "/servo_node/delta_twist_cmds": "geometry_msgs/msg/TwistStamped",
    "/episode_start": "std_msgs/msg/String",
    "/tool_pose": "geometry_msgs/msg/PoseStamped",
    "/block_pose": "geometry_msgs/msg/PoseStamped",
}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_collect_writes_readable_bag(tmp_path, storage, capsys):
    out = tmp_path / "bag"
    rc = cli.main(["collect", "--out", str(out), "--episodes", "2", "--steps-per-episode", "10", "--seed", "3",
                   "--storage", storage, "--no-progress"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["steps"] == 20
    store = typestore()
    with Reader(out) as reader:
        topics = {c.topic: c.msgtype for c in reader.connections}
        assert topics == EXPECTED
        counts = {t: reader.topics[t].msgcount for t in topics}
        assert counts == {**{t: 22 for t in EXPECTED}, "/episode_start": 2}  # T+1 frames per episode
        stamps, imgs, twists = [], [], []
        for conn, t_ns, raw in reader.messages():
            msg = store.deserialize_cdr(raw, conn.msgtype)
            if conn.topic == "/camera/image_raw":
                assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", 64, 64, 192)
                stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
                assert abs(stamp - t_ns * 1e-9) < 1e-6  # header stamp = receive time (sim time)
                stamps.append(stamp)
                imgs.append(np.asarray(msg.data).reshape(64, 64, 3))
            elif conn.topic == "/servo_node/delta_twist_cmds":
                assert msg.header.frame_id == "base_link"
                twists.append((msg.twist.linear.x, msg.twist.linear.y))
            elif conn.topic == "/joint_states":
                assert list(msg.name) == ["shoulder", "elbow", "lift"] and len(msg.position) == 3
            elif conn.topic in ("/tool_pose", "/block_pose"):
                assert msg.header.frame_id == "base_link"
                q = msg.pose.orientation
                assert abs(np.linalg.norm([q.w, q.x, q.y, q.z]) - 1.0) < 1e-6
    d = np.diff(stamps)
    assert np.sum(d > 0.5) == 1 and np.allclose(d[d < 0.5], 0.1, atol=1e-6)  # 10 Hz, one gap between episodes
    assert np.abs(np.array(twists)).max() <= 0.1 + 1e-9 and np.abs(np.array(twists)).max() > 0.01
    assert np.abs(imgs[1].astype(int) - imgs[0].astype(int)).sum() > 0  # the arm moved

    # The reader turns it back into the 2 episodes (markers or not).
    for episode_topic in ("/episode_start", None):
        es = load_episodes(out, BagSpec(state_topic="/joint_states", episode_topic=episode_topic))
        assert [len(e) for e in es.episodes] == [11, 11]
        assert es.state_spec.names == ["shoulder", "elbow", "lift"]
        np.testing.assert_array_equal(es.episodes[0].images[0], imgs[0])


def _replay_positions(bag, episodes, steps, seed):
    """Per episode [steps + 1, 4] (tool x, y, block x, y) at each frame, from a fresh cell driven by the bag's own
    recorded twists (float64 as written), so the expected values come from the simulator, not from the reader."""
    from ami_world_model.sim.cell import SimCell
    from ami_world_model.sim.config import SimConfig

    store = typestore()
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == "/servo_node/delta_twist_cmds"]
        twists = [store.deserialize_cdr(raw, c.msgtype).twist.linear for c, _, raw in reader.messages(conns)]
    cell = SimCell(SimConfig())
    out = []
    for ep in range(episodes):
        cell.reset(seed=seed + ep, task=("reach", "push")[ep % 2])  # --task mixed alternates
        rows = []
        for i in range(steps + 1):
            rows.append([*cell.ee_position()[:2], *cell.block_position()[:2]])
            if i < steps:
                v = twists[ep * (steps + 1) + i]
                cell.apply_twist(v.x, v.y)
                cell.step()
        out.append(np.array(rows))
    cell.close()
    return out


def test_collected_pose_topics_give_ground_truth_targets(tmp_path, capsys):
    out = tmp_path / "bag"
    assert cli.main(["collect", "--out", str(out), "--episodes", "2", "--steps-per-episode", "8", "--seed", "5",
                     "--no-progress"]) == 0
    truth = _replay_positions(out, episodes=2, steps=8, seed=5)
    assert all(np.ptp(w[:, :2], axis=0).max() > 5e-3 for w in truth)  # the tool moves: a shifted pairing would show
    spec = dict(pose_topics=["/tool_pose", "/block_pose"], episode_topic=None)
    es = load_episodes(out, BagSpec(**spec))
    assert es.target_names == ["tool.x", "tool.y", "block.x", "block.y"]
    assert [len(e) for e in es.episodes] == [9, 9]
    for ep, want in zip(es.episodes, truth):
        assert ep.targets.dtype == np.float32
        np.testing.assert_allclose(ep.targets, want, rtol=0, atol=1e-6)  # float32 of the cell's positions
    skipped = load_episodes(out, BagSpec(**spec, frame_skip=2))
    assert [len(e) for e in skipped.episodes] == [5, 5]
    for ep, want in zip(skipped.episodes, truth):
        np.testing.assert_allclose(ep.targets, want[::2], rtol=0, atol=1e-6)  # the pose at each kept frame
    plain = load_episodes(out, BagSpec())
    assert plain.target_names == [] and all(e.targets is None for e in plain.episodes)


def test_collect_refuses_existing_dir(tmp_path, capsys):
    assert cli.main(["collect", "--out", str(tmp_path), "--episodes", "1", "--steps-per-episode", "1"]) == 2


def test_randomize_fraction_spreads_evenly_over_both_tasks():
    from ami_world_model.sim.collect import randomized_episode

    for fraction, want in ((0.0, 0), (0.25, 4), (0.5, 8), (1.0, 16)):
        flags = [randomized_episode(ep, fraction) for ep in range(16)]
        assert sum(flags) == want, (fraction, flags)
        # mixed tasks alternate reach (even) and push (odd): each gets half of the randomised episodes
        assert sum(flags[0::2]) == sum(flags[1::2])


def test_collect_randomizes_the_asked_fraction(tmp_path):
    from ami_world_model.sim.collect import collect

    report = collect(tmp_path / "bag", episodes=4, steps=2, seed=0, randomize_fraction=0.5, progress=False)
    assert report["randomized_episodes"] == 2
    with pytest.raises(ValueError, match="randomize-fraction"):
        collect(tmp_path / "bag2", episodes=1, steps=1, seed=0, randomize_fraction=1.5, progress=False)
