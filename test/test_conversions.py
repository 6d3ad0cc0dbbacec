"""Image message -> numpy -> model input, for every supported encoding, vs a straightforward reference.

The decoder is the core's (data/image_decoding.py); these tests go through the ROS-side wrappers with real
sensor_msgs messages, as the node does.
"""
import numpy as np
import pytest

from ami_world_model.data import image_decoding as dec
from ami_world_model.ros import conversions as cv
from ami_world_model.safety import InputError

sensor_msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs wheel not installed")

RNG = np.random.default_rng(0)
CASES = [  # encoding, channels, order
    ("rgb8", 3, "rgb"), ("bgr8", 3, "bgr"), ("rgba8", 4, "rgb"), ("bgra8", 4, "bgr"), ("mono8", 1, "mono"),
    ("8UC1", 1, "mono"), ("8UC3", 3, "bgr"),
]


def _message(rows, width, encoding, step):
    """An Image whose rows are the given byte strings, each padded with garbage to ``step`` bytes."""
    msg = sensor_msgs.Image(height=len(rows), width=width, encoding=encoding, step=step)
    msg.data = b"".join(r + bytes(RNG.integers(0, 256, step - len(r), dtype=np.uint8)) for r in rows)
    return msg


def _packed(pix, encoding, pad=0):
    h, w, c = pix.shape
    return _message([pix[r].tobytes() for r in range(h)], w, encoding, w * c + pad)


def _reference_rgb(pix, order):
    """Per-pixel reference: mono replicated, bgr swapped, alpha dropped."""
    h, w, _ = pix.shape
    out = np.empty((h, w, 3), np.uint8)
    for y in range(h):
        for x in range(w):
            p = pix[y, x]
            out[y, x] = [p[0]] * 3 if order == "mono" else ([p[2], p[1], p[0]] if order == "bgr" else p[:3])
    return out


@pytest.mark.parametrize("encoding,channels,order,pad", [(*case, pad) for case in CASES for pad in (0, 6)])
def test_every_packed_encoding_matches_reference(encoding, channels, order, pad):
    pix = RNG.integers(0, 255, (5, 7, channels), endpoint=True).astype(np.uint8)
    msg = _packed(pix, encoding, pad)
    rgb = cv.image_msg_to_rgb(msg)
    ref = _reference_rgb(pix, order)
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, ref)
    # same size: no resize, only the scale to [0, 1] and the transpose to [3, H, W]
    x = cv.image_msg_to_input(msg, 5, 7)
    np.testing.assert_allclose(x, ref.astype(np.float64).transpose(2, 0, 1) / 255.0, rtol=0, atol=1e-6)
    assert x.dtype == np.float32 and x.flags.c_contiguous


def test_native_layout_is_zero_copy():
    pix = RNG.integers(0, 255, (4, 6, 3)).astype(np.uint8)
    msg = _packed(pix, "rgb8", pad=2)
    img = cv.decode_image(msg.data, 4, 6, "rgb8", msg.step)
    assert not img.flags.owndata and np.shares_memory(img, np.frombuffer(msg.data, np.uint8))


def test_last_row_may_omit_its_padding():
    pix = RNG.integers(0, 255, (3, 4, 3)).astype(np.uint8)
    msg = _packed(pix, "rgb8", pad=4)
    msg.data = bytes(msg.data)[:-4]  # some drivers trim the final row's padding
    np.testing.assert_array_equal(cv.image_msg_to_rgb(msg), pix)


def _yuv_planes(h, w):
    """Y per pixel, U/V constant per 2x2 block (valid for 4:2:2 and 4:2:0), and their BT.601 RGB."""
    y = RNG.integers(16, 236, (h, w)).astype(np.uint8)
    u = np.repeat(np.repeat(RNG.integers(16, 241, (h // 2, w // 2)), 2, 0), 2, 1).astype(np.uint8)
    v = np.repeat(np.repeat(RNG.integers(16, 241, (h // 2, w // 2)), 2, 0), 2, 1).astype(np.uint8)
    yf, uf, vf = (a.astype(np.float64) for a in (y, u, v))
    rgb = np.stack([1.164 * (yf - 16) + 1.596 * (vf - 128),
                    1.164 * (yf - 16) - 0.813 * (vf - 128) - 0.391 * (uf - 128),
                    1.164 * (yf - 16) + 2.018 * (uf - 128)], axis=-1)
    return y, u, v, np.clip(rgb, 0, 255)


@pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2", "nv12", "nv21"])
def test_yuv_layouts_decode_to_bt601_rgb(encoding):
    h, w, pad = 6, 8, 4
    y, u, v, ref = _yuv_planes(h, w)
    if encoding in ("yuv422", "yuv422_yuy2"):
        pairs = np.empty((h, w, 2), np.uint8)  # per pixel: (chroma, luma) for UYVY, (luma, chroma) for YUYV
        chroma = np.where(np.arange(w) % 2 == 0, u, v)  # U on even pixels, V on odd
        luma_first = encoding == "yuv422_yuy2"
        pairs[:, :, 0], pairs[:, :, 1] = (y, chroma) if luma_first else (chroma, y)
        rows = [pairs[r].tobytes() for r in range(h)]
        msg = _message(rows, w, encoding, 2 * w + pad)
    else:
        first, second = (u, v) if encoding == "nv12" else (v, u)
        uv = np.empty((h // 2, w), np.uint8)
        uv[:, 0::2], uv[:, 1::2] = first[::2, ::2], second[::2, ::2]
        rows = [y[r].tobytes() for r in range(h)] + [uv[r].tobytes() for r in range(h // 2)]
        msg = _message(rows, w, encoding, w + pad)
        msg.height = h  # the message's height is the image's, not the Y + UV row count
    rgb = cv.image_msg_to_rgb(msg)
    assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(rgb, ref, atol=1.0)


def test_resize_uses_area_average():
    pix = np.zeros((4, 4, 3), np.uint8)
    pix[:2, :2] = 255  # one bright quadrant -> exactly one bright pixel after 2x area downsample
    x = cv.to_model_input(pix, 2, 2)
    np.testing.assert_allclose(x[:, 0, 0], 1.0)
    np.testing.assert_allclose(x[:, 1, 1], 0.0)


def _wide_frame():
    """A 16:9 frame (32x18): red 7-pixel bands at the sides, green in the centred 18x18 square."""
    pix = np.zeros((18, 32, 3), np.uint8)
    pix[:, :, 0] = 255
    pix[:, 7:25] = (0, 255, 0)
    return pix


def test_center_crop_cuts_a_wide_frame_instead_of_squashing_it():
    msg = _packed(_wide_frame(), "rgb8")
    squashed = cv.image_msg_to_input(msg, 8, 8)  # the default: the whole frame, resized
    assert squashed[0, :, 0].min() > 0.9  # red bands survive at the edges
    centre = cv.image_msg_to_input(msg, 8, 8, crop="center")
    np.testing.assert_allclose(centre[1], 1.0)  # all green: the bands were cut off
    np.testing.assert_allclose(centre[0], 0.0)
    # a tall frame is cut top and bottom
    tall = np.ascontiguousarray(_wide_frame().transpose(1, 0, 2))
    np.testing.assert_allclose(cv.to_model_input(tall, 4, 4, crop="center")[1], 1.0)


def test_roi_crop_and_its_errors():
    pix = _wide_frame()
    roi = dec.parse_crop("0, 0, 7, 18")
    assert roi == (0, 0, 7, 18)
    x = cv.image_msg_to_input(_packed(pix, "rgb8"), 4, 4, crop=roi)
    np.testing.assert_allclose(x[0], 1.0)  # only the red band
    np.testing.assert_allclose(x[1], 0.0)
    with pytest.raises(InputError, match="does not fit the 32x18 image"):
        cv.image_msg_to_input(_packed(pix, "rgb8"), 4, 4, crop=(20, 0, 16, 18))


@pytest.mark.parametrize("spec,expected", [("", None), ("none", None), ("Center", "center"),
                                           ("1,2,3,4", (1, 2, 3, 4))])
def test_parse_crop(spec, expected):
    assert dec.parse_crop(spec) == expected


@pytest.mark.parametrize("spec", ["middle", "1,2,3", "1,2,0,4", "-1,0,4,4", "a,b,c,d"])
def test_parse_crop_rejects_bad_settings(spec):
    with pytest.raises(ValueError, match="crop"):
        dec.parse_crop(spec)


@pytest.mark.parametrize("encoding,kw,match", [
    ("16UC1", {}, "depth encoding"), ("32FC1", {"step": 8}, "depth encoding"), ("mono16", {}, "bit depth"),
    ("bayer_rggb8", {}, "bayer"), ("rgb16", {}, "unsupported"), ("", {}, "unsupported"),
    ("rgb8", {"step": 5}, "step"), ("rgb8", {"data": b"\x00" * 10}, "need"), ("rgb8", {"height": 0}, "empty"),
    ("yuv422", {"width": 3, "step": 6}, "even width"), ("nv12", {"height": 3, "step": 2}, "even width and height"),
    ("nv12", {"data": b"\x00" * 5}, "need"),
])
def test_bad_images_are_rejected_clearly(encoding, kw, match):
    msg = sensor_msgs.Image(height=2, width=2, encoding=encoding, step=6)
    msg.data = bytes(12)
    for k, v in kw.items():
        setattr(msg, k, v)
    with pytest.raises(InputError, match=match):
        cv.image_msg_to_rgb(msg)


def test_compressed_roundtrip_crop_and_garbage():
    import cv2

    pix = np.full((8, 8, 3), (10, 128, 250), np.uint8)
    ok, png = cv2.imencode(".png", pix[:, :, ::-1])
    msg = sensor_msgs.CompressedImage(format="png")
    msg.data = png.tobytes()
    x = cv.compressed_msg_to_input(msg, 4, 4)
    np.testing.assert_allclose(x[:, 0, 0], np.array([10, 128, 250]) / 255.0, atol=1e-6)
    ok, png = cv2.imencode(".png", _wide_frame()[:, :, ::-1])
    msg.data = png.tobytes()
    np.testing.assert_allclose(cv.compressed_msg_to_input(msg, 4, 4, crop="center")[1], 1.0)
    msg.data = b"not an image"
    with pytest.raises(InputError, match="decoded"):
        cv.compressed_msg_to_input(msg, 4, 4)
    msg.data = b""
    with pytest.raises(InputError, match="empty"):
        cv.compressed_msg_to_input(msg, 4, 4)


def test_decoder_is_ros_free():
    """The core decoder works on plain objects (rosbags messages, tests) without any ROS type."""
    import types

    pix = RNG.integers(0, 255, (3, 5, 3)).astype(np.uint8)
    msg = types.SimpleNamespace(height=3, width=5, encoding="bgr8", step=15, data=pix.reshape(-1))
    np.testing.assert_array_equal(dec.decode_any(msg), pix[:, :, ::-1])
