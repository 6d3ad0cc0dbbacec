"""Bags: the action frame comes from the messages' headers, and images go through the node's decoder
(same encodings, same refusals, same crop)."""
import numpy as np
import pytest

from ami_world_model.config import ConfigError
from ami_world_model.data.bags import BagError, BagSpec, BagWriter, load_episodes

IMG, ACT = "/cam/image", "/cmd"
PERIOD = 0.1


def _write(path, frames=("tool0",) * 10, image=None, encoding="rgb8"):
    """One frame per entry of ``frames`` (the twist's header.frame_id); pixels carry the index."""
    with BagWriter(path) as bag:
        ty = bag.store.types
        for i, frame_id in enumerate(frames):
            t = 1.0 + i * PERIOD
            pix = np.full((18, 32, 3), i, np.uint8) if image is None else image
            if encoding == "rgb8":
                bag.image(IMG, t, pix)
            else:  # a raw layout written as the camera driver would
                bag.write(IMG, ty["sensor_msgs/msg/Image"](
                    header=bag.header(t, "cam"), height=pix.shape[0], width=pix.shape[1], encoding=encoding,
                    is_bigendian=0, step=pix.shape[1] * 2, data=np.zeros(pix.shape[0] * pix.shape[1] * 2, np.uint8)),
                    t)
            bag.twist_stamped(ACT, t + 0.002, (i / 100, 0.0, 0.0), frame_id=frame_id)
    return path


def _spec(**kw):
    return BagSpec(**{"image_topic": IMG, "action_topic": ACT, "image_size": [8, 8], **kw})


def test_action_frame_comes_from_the_headers(tmp_path):
    es = load_episodes(_write(tmp_path / "b"), _spec())
    assert es.action_spec.frame_id == "tool0"  # not a hard-coded base_link
    assert es.source["action_frame_id"] == "tool0"
    # a configured frame is checked against the headers, not silently preferred
    with pytest.raises(BagError, match="action_frame_id is 'base_link' but the action headers say 'tool0'"):
        load_episodes(tmp_path / "b", _spec(action_frame_id="base_link"))
    assert load_episodes(tmp_path / "b", _spec(action_frame_id="tool0")).action_spec.frame_id == "tool0"


def test_mixed_or_missing_action_frames(tmp_path):
    with pytest.raises(BagError, match=r"several frames \['base_link', 'tool0'\]"):
        load_episodes(_write(tmp_path / "mixed", frames=("tool0", "base_link") * 5), _spec())
    empty = _write(tmp_path / "empty", frames=("",) * 10)
    assert load_episodes(empty, _spec()).action_spec.frame_id == ""  # unknown: the node cannot check it
    assert load_episodes(empty, _spec(action_frame_id="world")).action_spec.frame_id == "world"


def test_center_crop_in_bags_matches_the_node(tmp_path):
    wide = np.zeros((18, 32, 3), np.uint8)
    wide[:, :, 0] = 255
    wide[:, 7:25] = (0, 255, 0)  # green centred square, red bands at the sides
    path = _write(tmp_path / "b", image=wide)
    squashed = load_episodes(path, _spec()).episodes[0].images
    assert squashed[:, :, 0, 0].min() == 255  # red edge kept when the whole frame is resized
    cropped = load_episodes(path, _spec(image_crop="center")).episodes[0].images
    assert np.all(cropped[..., 1] == 255) and np.all(cropped[..., 0] == 0)
    with pytest.raises(ConfigError, match="image_crop"):
        _spec(image_crop="middle")


def test_depth_images_are_refused_with_the_topic_named(tmp_path):
    path = _write(tmp_path / "b", encoding="16UC1")
    with pytest.raises(BagError, match=r"/cam/image at t=1\.000 s: 16UC1 is a depth encoding"):
        load_episodes(path, _spec())
