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


def test_collect_refuses_existing_dir(tmp_path, capsys):
    assert cli.main(["collect", "--out", str(tmp_path), "--episodes", "1", "--steps-per-episode", "1"]) == 2
