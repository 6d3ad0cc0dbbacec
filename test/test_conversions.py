"""Image message -> numpy -> model input, for every supported encoding, vs a straightforward reference."""
import numpy as np
import pytest

from ami_world_model.ros import conversions as cv
from ami_world_model.safety import InputError

sensor_msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs wheel not installed")

RNG = np.random.default_rng(0)
CASES = [  # encoding, dtype, channels, order
    ("rgb8", np.uint8, 3, "rgb"), ("bgr8", np.uint8, 3, "bgr"), ("rgba8", np.uint8, 4, "rgb"),
    ("bgra8", np.uint8, 4, "bgr"), ("mono8", np.uint8, 1, "mono"), ("mono16", np.uint16, 1, "mono"),
    ("16UC1", np.uint16, 1, "mono"), ("32FC1", np.float32, 1, "mono"),
]


def _pixels(h, w, c, dtype):
    if dtype == np.float32:
        return RNG.uniform(0.0, 1.0, (h, w, c)).astype(np.float32)
    return RNG.integers(0, np.iinfo(dtype).max, (h, w, c), endpoint=True).astype(dtype)


def _message(pix, encoding, pad_bytes=0, bigendian=False):
    """Rows serialised one by one, each followed by ``pad_bytes`` of garbage (row padding)."""
    h, w, c = pix.shape
    dt = pix.dtype.newbyteorder(">") if bigendian else pix.dtype.newbyteorder("<")
    rows = [pix[r].astype(dt).tobytes() + bytes(RNG.integers(0, 256, pad_bytes, dtype=np.uint8))
            for r in range(h)]
    msg = sensor_msgs.Image(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian),
                            step=w * c * pix.dtype.itemsize + pad_bytes)
    msg.data = b"".join(rows)
    return msg


def _reference_rgb(pix, order):
    """Per-pixel reference: mono replicated, bgr swapped, alpha dropped."""
    h, w, _ = pix.shape
    out = np.empty((h, w, 3), pix.dtype)
    for y in range(h):
        for x in range(w):
            p = pix[y, x]
            out[y, x] = [p[0]] * 3 if order == "mono" else ([p[2], p[1], p[0]] if order == "bgr" else p[:3])
    return out


@pytest.mark.parametrize("encoding,dtype,channels,order,pad,bigendian", [
    (*case, pad, big) for case in CASES for pad in (0, 6)
    for big in ((False, True) if np.dtype(case[1]).itemsize > 1 else (False,))  # 8-bit has no byte order
])
def test_every_encoding_matches_reference(encoding, dtype, channels, order, pad, bigendian):
    pad = pad - pad % np.dtype(dtype).itemsize
    pix = _pixels(5, 7, channels, dtype)
    msg = _message(pix, encoding, pad, bigendian)
    rgb = cv.image_msg_to_rgb(msg)
    ref = _reference_rgb(pix, order)
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(rgb, ref)
    # same size: no resize, only the scale to [0, 1] and the transpose to [3, H, W]
    x = cv.image_msg_to_input(msg, 5, 7)
    scale = {np.uint8: 255.0, np.uint16: 65535.0, np.float32: 1.0}[dtype]
    np.testing.assert_allclose(x, ref.astype(np.float64).transpose(2, 0, 1) / scale, rtol=0, atol=1e-6)
    assert x.dtype == np.float32 and x.flags.c_contiguous


def test_native_layout_is_zero_copy():
    pix = _pixels(4, 6, 3, np.uint8)
    msg = _message(pix, "rgb8", pad_bytes=2)
    img, order = cv.decode_image(msg.data, 4, 6, "rgb8", msg.step)
    assert not img.flags.owndata and np.shares_memory(img, np.frombuffer(msg.data, np.uint8))


def test_resize_uses_area_average():
    pix = np.zeros((4, 4, 3), np.uint8)
    pix[:2, :2] = 255  # one bright quadrant -> exactly one bright pixel after 2x area downsample
    x = cv.to_model_input(pix, 2, 2)
    np.testing.assert_allclose(x[:, 0, 0], 1.0)
    np.testing.assert_allclose(x[:, 1, 1], 0.0)


def test_float_images_are_sanitised():
    pix = np.array([[[np.nan], [2.0], [-1.0], [0.5]]], np.float32)
    x = cv.image_msg_to_input(_message(pix, "32FC1"), 1, 4)
    np.testing.assert_allclose(x[0, 0], [0.0, 1.0, 0.0, 0.5])


@pytest.mark.parametrize("encoding,kw,match", [
    ("bayer_rggb8", {}, "bayer"), ("yuv422", {}, "unsupported"), ("rgb8", {"step": 5}, "step"),
    ("rgb8", {"data": b"\x00" * 10}, "need"), ("rgb8", {"height": 0}, "empty"),
    ("mono16", {"step": 7}, "multiple"),
])
def test_bad_images_are_rejected_clearly(encoding, kw, match):
    msg = sensor_msgs.Image(height=2, width=2, encoding=encoding, step=6)
    msg.data = bytes(12)
    for k, v in kw.items():
        setattr(msg, k, v)
    with pytest.raises(InputError, match=match):
        cv.image_msg_to_rgb(msg)


def test_compressed_roundtrip_and_garbage():
    import cv2

    pix = np.full((8, 8, 3), (10, 128, 250), np.uint8)
    ok, png = cv2.imencode(".png", pix[:, :, ::-1])
    msg = sensor_msgs.CompressedImage(format="png")
    msg.data = png.tobytes()
    x = cv.compressed_msg_to_input(msg, 4, 4)
    np.testing.assert_allclose(x[:, 0, 0], np.array([10, 128, 250]) / 255.0, atol=1e-6)
    msg.data = b"not an image"
    with pytest.raises(InputError, match="decoded"):
        cv.compressed_msg_to_input(msg, 4, 4)
