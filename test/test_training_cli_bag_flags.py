"""`ami-wm train --image-crop / --action-frame-id` reach the bag reader (BagSpec) and what it records."""
import argparse

import numpy as np
import pytest

from ami_world_model.config import ImageSpec
from ami_world_model.data.synthetic import make_synthetic


def _bag(tmp_path):
    pytest.importorskip("rosbags", reason="rosbags is needed to write and read the test bag")
    from ami_world_model.data.bags import BagWriter

    ep = make_synthetic(episodes=1, length=8, seed=3).episodes[0]
    wide = np.pad(ep.images, ((0, 0), (0, 0), (16, 16), (0, 0)))  # [T, 64, 96, 3]: a 3:2 camera
    bag = tmp_path / "bag"
    with BagWriter(bag) as w:
        for t in range(len(ep)):
            w.image("/camera/image_raw", 0.1 * t, wide[t])
            w.twist_stamped("/servo_node/delta_twist_cmds", 0.1 * t + 0.001, [*ep.actions[t], 0.0], frame_id="tool0")
    return bag


def _load(bag, *flags):
    from ami_world_model.training import cli

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    args = p.parse_args(["encoder", "--data", str(bag), "--out", "unused", "--tolerance-s", "0.02", *flags])
    return cli.load_data(args, ImageSpec(height=16, width=16))


def test_image_crop_and_action_frame_flags_fill_the_bag_spec(tmp_path):
    from ami_world_model.data.bags import BagError

    bag = _bag(tmp_path)
    plain = _load(bag)
    assert plain.source["image_crop"] == "none" and plain.source["action_frame_id"] == "tool0"
    cropped = _load(bag, "--image-crop", "center", "--action-frame-id", "tool0")
    assert cropped.source["image_crop"] == "center" and cropped.action_spec.frame_id == "tool0"
    assert cropped.episodes[0].images.shape[1:3] == plain.episodes[0].images.shape[1:3] == (16, 16)
    assert (cropped.episodes[0].images != plain.episodes[0].images).any()  # the 64x96 frame was cropped first
    with pytest.raises(BagError, match="action_frame_id is 'base_link' but the action headers say 'tool0'"):
        _load(bag, "--action-frame-id", "base_link")


def test_pose_topic_and_name_flags_fill_the_bag_spec(tmp_path):
    from ami_world_model.data.bags import BagError, BagWriter

    bag = tmp_path / "bag"
    with BagWriter(bag) as w:
        for t in range(6):
            w.image("/camera/image_raw", 0.1 * t, np.full((16, 16, 3), t, np.uint8))
            w.twist_stamped("/servo_node/delta_twist_cmds", 0.1 * t, [0.01, 0.0, 0.0])
            w.pose_stamped("/tool_pose", 0.1 * t, [t / 10, 0.5, 0.0])
            w.pose_stamped("/markers/7", 0.1 * t, [-t / 10, 0.25, 0.0])
    assert _load(bag).target_names == []
    es = _load(bag, "--pose-topic", "/tool_pose", "--pose-topic", "/markers/7")
    assert es.target_names == ["tool.x", "tool.y", "7.x", "7.y"]
    t = np.arange(6) / 10
    np.testing.assert_allclose(es.episodes[0].targets, np.stack([t, 0.5 + 0 * t, -t, 0.25 + 0 * t], 1), atol=1e-6)
    named = _load(bag, "--pose-topic", "/tool_pose", "--pose-topic", "/markers/7", "--pose-name", "tip",
                  "--pose-name", "block")
    assert named.target_names == ["tip.x", "tip.y", "block.x", "block.y"]
    with pytest.raises(BagError, match="no topic '/block_pose'"):
        _load(bag, "--pose-topic", "/block_pose")
