"""Raw camera bytes -> [H, W, 3] uint8 RGB -> the model's [3, H, W] float32 input: one decoder for the node
(``ros/conversions.py``) and for training from bags (``data/bags.py``), so both see a frame the same way.

ROS-free: it takes the fields of a sensor_msgs/Image (data, height, width, encoding, step), not the message.
Packed 8-bit layouts are viewed with ``np.frombuffer`` (zero-copy, ``step`` row padding honoured); YUV layouts
that UVC/GMSL drivers publish are converted by OpenCV. Depth images and 16-bit mono are refused: their scale
is not an image's (depth is metres or millimetres; mono16 may hold 10, 12 or 16 significant bits).
The model input is the INTER_AREA shrink of the (cropped) view, with no full-frame copy: camera-sized frames
go through ``area_resize.py``, which gives cv2.resize's pixels exactly in less time.
"""
from __future__ import annotations

from typing import Any, Tuple, Union

import numpy as np

from ami_world_model.data.area_resize import area_plan, resize_area
from ami_world_model.safety import InputError

# encoding -> (channels, colour order). 8UC3/8UC1 follow OpenCV's conventions (BGR / one channel).
PACKED = {
    "rgb8": (3, "rgb"), "bgr8": (3, "bgr"), "rgba8": (4, "rgb"), "bgra8": (4, "bgr"),
    "mono8": (1, "mono"), "8UC1": (1, "mono"), "8UC3": (3, "bgr"),
}
# encoding -> (OpenCV conversion code name, planar 4:2:0). ROS "yuv422" is UYVY; "yuv422_yuy2" is YUYV.
YUV = {"yuv422": ("COLOR_YUV2RGB_UYVY", False), "yuv422_yuy2": ("COLOR_YUV2RGB_YUY2", False),
       "nv12": ("COLOR_YUV2RGB_NV12", True), "nv21": ("COLOR_YUV2RGB_NV21", True)}
DEPTH = ("16UC1", "32FC1")
SUPPORTED = sorted(PACKED) + sorted(YUV)
MAX_SIDE = 16384  # reject absurd sizes before allocating anything

Crop = Union[None, str, Tuple[int, int, int, int]]  # None/"none", "center", or an (x, y, w, h) pixel ROI


def decode_image(data: Any, height: int, width: int, encoding: str, step: int) -> np.ndarray:
    """Raw image bytes -> [height, width, 3] uint8 RGB. Raises InputError naming what is wrong.

    For rgb8/bgr8/rgba8/bgra8/mono8 the result is a view of ``data`` (zero-copy): callers must not keep it
    beyond the buffer's life.
    """
    if encoding in DEPTH:
        raise InputError(f"{encoding} is a depth encoding (ROS REP 118), not a camera image: point the camera "
                         f"topic at the colour stream (e.g. /camera/camera/color/image_raw)")
    if encoding == "mono16":
        raise InputError("mono16 is not supported: its bit depth (10, 12 or 16 significant bits) is camera-"
                         "specific; publish mono8 or rgb8 (the driver's 8-bit mode, or image_proc)")
    if encoding.startswith("bayer_"):
        raise InputError(f"bayer encoding {encoding!r} is not supported: debayer upstream (image_proc)")
    if encoding not in PACKED and encoding not in YUV:
        raise InputError(f"unsupported image encoding {encoding!r}; supported: {SUPPORTED}")
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
        raise InputError(f"image size {width}x{height} is empty or too large")
    buf = np.frombuffer(data, dtype=np.uint8)
    if encoding in YUV:
        return _decode_yuv(buf, height, width, encoding, step)
    channels, order = PACKED[encoding]
    img = _rows(buf, height, width * channels, step, encoding).reshape(height, width, channels)
    if order == "mono":
        return np.repeat(img, 3, axis=2)
    rgb = img[:, :, :3]
    return rgb[:, :, ::-1] if order == "bgr" else rgb


def _rows(buf: np.ndarray, rows: int, row_bytes: int, step: int, encoding: str) -> np.ndarray:
    """[rows, row_bytes] view of ``buf`` with row stride ``step``; the last row needs only row_bytes."""
    if step < row_bytes:
        raise InputError(f"{encoding} image step {step} < the {row_bytes} bytes one row needs")
    needed = step * (rows - 1) + row_bytes  # some drivers trim the final row's padding
    if buf.size < needed:
        raise InputError(f"{encoding} image of {rows} rows, step {step}: need {needed} bytes, got {buf.size}")
    return np.lib.stride_tricks.as_strided(buf, shape=(rows, row_bytes), strides=(step, 1), writeable=False)


def _decode_yuv(buf: np.ndarray, height: int, width: int, encoding: str, step: int) -> np.ndarray:
    import cv2

    code, planar = YUV[encoding]
    if width % 2 or (planar and height % 2):
        raise InputError(f"{encoding} needs an even width{' and height' if planar else ''}, got {width}x{height}")
    if planar:  # Y plane (height rows) then interleaved UV (height / 2 rows), both with stride `step`
        packed = np.ascontiguousarray(_rows(buf, height * 3 // 2, width, step, encoding))  # [1.5 H, W]
    else:  # two bytes per pixel
        packed = np.ascontiguousarray(_rows(buf, height, width * 2, step, encoding)).reshape(height, width, 2)
    return cv2.cvtColor(packed, getattr(cv2, code))


def decode_compressed(data: Any, fmt: str = "") -> np.ndarray:
    """CompressedImage bytes (jpeg/png) -> [H, W, 3] uint8 RGB. InputError when empty or undecodable."""
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise InputError("compressed image is empty")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"compressed image (format {fmt!r}) could not be decoded")
    return bgr[:, :, ::-1]


def parse_crop(spec: Crop) -> Crop:
    """A crop setting from a parameter string: "" or "none", "center", or "x,y,w,h" (pixels).

    Raises ValueError on anything else, so a bad parameter fails at configure, not per frame.
    """
    if spec is None or isinstance(spec, tuple):
        return _check_roi(spec) if spec is not None else None
    text = str(spec).strip().lower()
    if text in ("", "none"):
        return None
    if text in ("center", "centre"):
        return "center"
    parts = text.replace(" ", "").split(",")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return _check_roi(tuple(int(p) for p in parts))
    raise ValueError(f"crop must be 'none', 'center' or 'x,y,w,h' in pixels, got {spec!r}")


def _check_roi(roi: Tuple[int, ...]) -> Tuple[int, int, int, int]:
    x, y, w, h = (int(v) for v in roi)
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ValueError(f"crop ROI (x, y, w, h) needs x, y >= 0 and w, h > 0, got {roi}")
    return x, y, w, h


def crop_image(img: np.ndarray, crop: Crop, height: int, width: int) -> np.ndarray:
    """The region of ``img`` [H0, W0, C] that ``to_model_input`` resizes to height x width (a view).

    "center": the largest centred region with the model's aspect ratio, so a 16:9 frame is cut, not squashed.
    (x, y, w, h): that pixel ROI; InputError when it does not lie inside the frame.
    """
    if crop is None or crop == "none":
        return img
    h0, w0 = img.shape[:2]
    if crop == "center":
        if w0 * height > h0 * width:  # wider than the model's aspect: cut the sides
            cw, ch = max(1, round(h0 * width / height)), h0
        else:  # taller: cut top and bottom
            cw, ch = w0, max(1, round(w0 * height / width))
        x, y = (w0 - cw) // 2, (h0 - ch) // 2
        return img[y:y + ch, x:x + cw]
    x, y, w, h = crop  # type: ignore[misc]
    if x + w > w0 or y + h > h0:
        raise InputError(f"crop ROI x={x} y={y} w={w} h={h} does not fit the {w0}x{h0} image")
    return img[y:y + h, x:x + w]


def to_model_input(rgb: np.ndarray, height: int, width: int, crop: Crop = None) -> np.ndarray:
    """[H0, W0, 3] uint8 RGB -> [3, height, width] float32 in [0, 1]: crop, then INTER_AREA resize.

    Resizing happens before the float conversion: fewer pixels to convert.
    """
    src = resize_rgb(crop_image(rgb, crop, height, width), height, width)
    out = np.empty((src.shape[2], height, width), np.float32)  # [3, H, W]
    return np.multiply(src.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=out)  # scale and transpose at once


def resize_rgb(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H0, W0, 3] uint8 -> [height, width, 3] uint8 (INTER_AREA when shrinking, linear when enlarging).

    ``rgb`` may be a view of the message buffer (a crop, bgr with reversed channels): it is not copied.
    Large shrinks go through ``area_resize`` (cv2.resize's INTER_AREA pixels, exactly, in less time).
    """
    import cv2

    if rgb.strides[2] < 0:  # bgr viewed as rgb: resize the stored order, then reverse the small result
        return np.ascontiguousarray(resize_rgb(rgb[:, :, ::-1], height, width)[:, :, ::-1])
    h0, w0, channels = rgb.shape
    if (h0, w0) == (height, width):
        return np.ascontiguousarray(rgb)
    plan = area_plan(h0, w0, height, width, channels)
    if plan is not None:
        return resize_area(rgb, plan)
    interp = cv2.INTER_AREA if h0 >= height and w0 >= width else cv2.INTER_LINEAR
    if rgb.strides[1:] != (channels, 1):  # e.g. rgba viewed as rgb; a crop's row stride alone is fine
        rgb = np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (width, height), interpolation=interp)


def decode_any(msg: Any) -> np.ndarray:
    """A sensor_msgs/Image or CompressedImage-shaped object (ROS or rosbags) -> [H, W, 3] uint8 RGB."""
    if hasattr(msg, "format"):  # CompressedImage
        return decode_compressed(_bytes(msg.data), msg.format)
    return decode_image(_bytes(msg.data), int(msg.height), int(msg.width), str(msg.encoding), int(msg.step))


def _bytes(data: Any) -> Any:
    """rclpy gives array.array / bytes, rosbags a numpy array: all expose the buffer protocol."""
    return data if isinstance(data, (bytes, bytearray, memoryview, np.ndarray)) else bytes(data)

