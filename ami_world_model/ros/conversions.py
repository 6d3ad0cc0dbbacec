"""sensor_msgs/Image (and CompressedImage) -> the model's [3, H, W] float32 input in [0, 1], and back.

The decoding itself is the core's (``data/image_decoding.py``, shared with training from bags): it honours
``step`` row padding, views packed 8-bit layouts with ``np.frombuffer`` (zero-copy), converts the YUV layouts
UVC/GMSL drivers publish, and refuses depth and 16-bit mono with a clear InputError. rclpy copies large
messages slowly (rclpy#763), so the whole path is measured in ``ami-wm bench``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ami_world_model.data.image_decoding import (  # noqa: F401 - re-exported for the node and tests
    SUPPORTED,
    Crop,
    crop_image,
    decode_compressed,
    decode_image,
    parse_crop,
    to_model_input,
)


def image_msg_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> [H, W, 3] uint8 RGB (a view of msg.data where the layout allows)."""
    return decode_image(msg.data, msg.height, msg.width, msg.encoding, msg.step)


def image_msg_to_input(msg: Any, height: int, width: int, crop: Crop = None) -> np.ndarray:
    """sensor_msgs/Image -> model input [3, height, width] float32 in [0, 1] (``crop``: see parse_crop)."""
    return to_model_input(image_msg_to_rgb(msg), height, width, crop)


def compressed_msg_to_input(msg: Any, height: int, width: int, crop: Crop = None) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png) -> model input [3, height, width] float32 in [0, 1]."""
    return to_model_input(decode_compressed(msg.data, msg.format), height, width, crop)


def rgb_to_image_msg(rgb: np.ndarray, msg_cls: Any, stamp: Any = None, frame_id: str = "") -> Any:
    """[H, W, 3] uint8 RGB -> sensor_msgs/Image rgb8 (debug image, tests)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    msg = msg_cls()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = int(rgb.shape[1] * 3)
    msg.data = rgb.tobytes()
    return msg


def input_to_rgb8(x: np.ndarray) -> np.ndarray:
    """Model input [3, H, W] float in [0, 1] -> [H, W, 3] uint8 (for the debug image)."""
    return (np.clip(np.asarray(x).transpose(1, 2, 0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
