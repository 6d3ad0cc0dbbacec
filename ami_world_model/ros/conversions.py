"""sensor_msgs/Image (and CompressedImage) -> numpy -> the model's [3, H, W] float32 input in [0, 1].

cv_bridge is used when importable; otherwise our own decoder, which honours ``step`` row padding and
``is_bigendian`` and views the message buffer with ``np.frombuffer`` (zero-copy) where the layout allows.
rclpy copies large messages slowly (rclpy#763), so the whole path is measured in ``ami-wm bench``.
"""
from __future__ import annotations

from typing import Any, Tuple

import cv2
import numpy as np

from ami_world_model.safety import InputError

try:  # cv_bridge is an apt package, not a wheel: use it only when the ROS install provides it
    from cv_bridge import CvBridge  # type: ignore

    _BRIDGE = CvBridge()
except Exception:  # noqa: BLE001 - any import failure means "not available"
    _BRIDGE = None

# encoding -> (numpy dtype, channels, order of colour channels or "mono")
ENCODINGS = {
    "rgb8": (np.uint8, 3, "rgb"),
    "bgr8": (np.uint8, 3, "bgr"),
    "rgba8": (np.uint8, 4, "rgb"),
    "bgra8": (np.uint8, 4, "bgr"),
    "mono8": (np.uint8, 1, "mono"),
    "8UC1": (np.uint8, 1, "mono"),
    "mono16": (np.uint16, 1, "mono"),
    "16UC1": (np.uint16, 1, "mono"),
    "32FC1": (np.float32, 1, "mono"),
}
MAX_SIDE = 16384  # reject absurd sizes before allocating anything


def decode_image(data: Any, height: int, width: int, encoding: str, step: int,
                 is_bigendian: bool = False) -> Tuple[np.ndarray, str]:
    """Raw image bytes -> (array [H, W, C] of the encoding's dtype, channel order "rgb"|"bgr"|"mono").

    The result is a strided view of ``data`` when the dtype is native-endian (zero-copy), so callers
    must not keep it beyond the message's life. Raises InputError naming what is wrong.
    """
    if encoding.startswith("bayer_"):
        raise InputError(f"bayer encoding {encoding!r} is not supported: debayer upstream (image_proc)")
    if encoding not in ENCODINGS:
        raise InputError(f"unsupported image encoding {encoding!r}; supported: {sorted(ENCODINGS)}")
    dtype, channels, order = ENCODINGS[encoding]
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
        raise InputError(f"image size {width}x{height} is empty or too large")
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise InputError(f"{encoding} image step {step} < width*channels*bytes = {row_bytes}")
    if step % itemsize:
        raise InputError(f"{encoding} image step {step} is not a multiple of the pixel size {itemsize}")
    buf = np.frombuffer(data, dtype=np.uint8)
    # The last row needs only row_bytes, not a full step (some drivers trim the final padding).
    needed = step * (height - 1) + row_bytes
    if buf.size < needed:
        raise InputError(f"{encoding} {width}x{height} step {step}: need {needed} bytes, got {buf.size}")
    big = bool(is_bigendian) and itemsize > 1
    dt = np.dtype(dtype).newbyteorder(">") if big else np.dtype(dtype)
    # needed is a multiple of itemsize (step and row_bytes are), so the view is valid; unaligned
    # buffers are still read correctly by numpy, only slower.
    img = np.lib.stride_tricks.as_strided(buf[:needed].view(dt), shape=(height, width, channels),
                                          strides=(step, channels * itemsize, itemsize), writeable=False)
    if big:  # one copy into native byte order (cv2 and torch need it)
        img = img.astype(np.dtype(dtype).newbyteorder("="))
    return img, order


def to_rgb(img: np.ndarray, order: str) -> np.ndarray:
    """[H, W, C] of any supported dtype -> [H, W, 3] of the same dtype, RGB channel order."""
    if order == "mono":
        return np.repeat(img[:, :, :1], 3, axis=2)
    rgb = img[:, :, :3]
    return rgb[:, :, ::-1] if order == "bgr" else rgb


def to_model_input(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H0, W0, 3] uint8/uint16/float32 -> [3, height, width] float32 in [0, 1] (INTER_AREA resize).

    Resizing happens before the float conversion: fewer pixels to convert. Float images are taken as
    already in [0, 1]; NaN/inf (e.g. invalid depth) become 0 and values are clipped.
    """
    src = np.ascontiguousarray(rgb)
    if src.shape[0] != height or src.shape[1] != width:
        interp = cv2.INTER_AREA if src.shape[0] >= height and src.shape[1] >= width else cv2.INTER_LINEAR
        src = cv2.resize(src, (width, height), interpolation=interp)
    if src.dtype == np.uint8:
        out = src.astype(np.float32) * (1.0 / 255.0)
    elif src.dtype == np.uint16:
        out = src.astype(np.float32) * (1.0 / 65535.0)
    else:
        out = np.nan_to_num(src.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        np.clip(out, 0.0, 1.0, out=out)
    return np.ascontiguousarray(out.transpose(2, 0, 1))  # [3, H, W]


def image_msg_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> [H, W, 3] RGB array (dtype of the encoding). InputError on bad input."""
    if _BRIDGE is not None and not msg.encoding.startswith("bayer_") and msg.encoding in ENCODINGS:
        try:
            img = _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough")
        except Exception as exc:  # noqa: BLE001 - cv_bridge raises its own error types
            raise InputError(f"cv_bridge could not convert the image: {exc}") from exc
        img = img[:, :, None] if img.ndim == 2 else img
        return to_rgb(img, ENCODINGS[msg.encoding][2])
    img, order = decode_image(msg.data, msg.height, msg.width, msg.encoding, msg.step, msg.is_bigendian)
    return to_rgb(img, order)


def image_msg_to_input(msg: Any, height: int, width: int) -> np.ndarray:
    """sensor_msgs/Image -> model input [3, height, width] float32 in [0, 1]."""
    return to_model_input(image_msg_to_rgb(msg), height, width)


def compressed_msg_to_input(msg: Any, height: int, width: int) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png) -> model input [3, height, width] float32 in [0, 1]."""
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size == 0:
        raise InputError("compressed image is empty")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"compressed image (format {msg.format!r}) could not be decoded")
    return to_model_input(bgr[:, :, ::-1], height, width)


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
