"""The fast image -> model input path equals the straightforward one: cv2.resize(INTER_AREA) on a packed copy,
then float32 * (1 / 255) and a transpose, on random, tie-prone and rendered frames, for every crop and encoding.

The fast path (data/area_resize.py) computes INTER_AREA from an integral image and recomputes the values near
a rounding half with OpenCV's float32 order; a single differing pixel would change what training and planning
see, so every comparison here is exact.
"""
import numpy as np
import pytest

from ami_world_model.data import area_resize
from ami_world_model.data import image_decoding as dec

cv2 = pytest.importorskip("cv2", reason="opencv not installed")

RNG = np.random.default_rng(7)
SIZES = [(480, 640), (480, 480), (720, 1280), (480, 848), (401, 517), (1080, 1920)]


def _reference_input(rgb, height, width, crop=None):
    """The straightforward computation the fast path replaces: copy, crop, cv2.resize, scale, transpose."""
    src = np.ascontiguousarray(rgb)
    h0, w0 = src.shape[:2]
    if crop == "center":
        cw, ch = (round(h0 * width / height), h0) if w0 * height > h0 * width else (w0, round(w0 * height / width))
        x, y = (w0 - cw) // 2, (h0 - ch) // 2
        src = np.ascontiguousarray(src[y:y + ch, x:x + cw])
    elif crop is not None:
        x, y, cw, ch = crop
        src = np.ascontiguousarray(src[y:y + ch, x:x + cw])
    if src.shape[:2] != (height, width):
        src = cv2.resize(src, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray((src.astype(np.float32) * (1.0 / 255.0)).transpose(2, 0, 1))


def _frames(h0, w0, channels=3):
    """Random, coarsely quantised (many exact halves after averaging) and flat frames."""
    noise = RNG.integers(0, 256, (h0, w0, channels), dtype=np.uint8)
    yield noise
    yield (noise // 64 * 64 + 32).astype(np.uint8)
    yield (noise // 128 * 255).astype(np.uint8)
    yield np.full((h0, w0, channels), RNG.integers(0, 256), np.uint8)


@pytest.mark.parametrize("h0,w0", SIZES)
def test_fast_resize_equals_cv2_inter_area(h0, w0):
    plan = area_resize.area_plan(h0, w0, 64, 64)
    assert plan is not None  # all of these sizes take the fast path
    for frame in _frames(h0, w0):
        np.testing.assert_array_equal(area_resize.resize_area(frame, plan),
                                      cv2.resize(frame, (64, 64), interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("out_hw", [(48, 64), (64, 96), (17, 23), (120, 160)])
def test_other_output_sizes(out_hw):
    h, w = out_hw
    frame = next(_frames(480, 640))
    np.testing.assert_array_equal(dec.resize_rgb(frame, h, w),
                                  cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("crop", [None, "center", (37, 11, 500, 433), (0, 0, 640, 480), (100, 40, 64, 64),
                                  (5, 3, 128, 96)])
def test_to_model_input_equals_reference_for_every_crop(crop):
    for frame in _frames(480, 640):
        fast = dec.to_model_input(frame, 64, 64, crop)
        assert fast.shape == (3, 64, 64) and fast.dtype == np.float32 and fast.flags.c_contiguous
        np.testing.assert_array_equal(fast, _reference_input(frame, 64, 64, crop))


def test_views_of_the_message_buffer_are_not_required_to_be_packed():
    """bgr (reversed channels), rgba / bgra (a 4-byte pixel stride) and padded rows, as decode_image gives."""
    four = RNG.integers(0, 256, (480, 700, 4), dtype=np.uint8)
    for view in (four[:, :640, :3], four[:, :640, 2::-1], four[:, 30:670, [2, 1, 0]], four[:, :, 2::-1][:, :640]):
        np.testing.assert_array_equal(dec.to_model_input(view, 64, 64), _reference_input(view, 64, 64))


def test_near_half_values_are_recomputed_in_opencvs_order():
    """At 640x480 -> 64x64 many averages are exactly k + 1/2; OpenCV's float32 rounding decides them. The
    float64 estimate alone rounds some of them the other way: the recomputation is what makes them equal."""
    plan = area_resize.area_plan(480, 640, 64, 64)
    frame = RNG.integers(0, 256, (480, 640, 3), dtype=np.uint8)  # odd and even values: exact halves occur
    integral = cv2.integral(frame, sdepth=cv2.CV_32S).astype(np.float64)
    exact = np.zeros((64, 64, 3))  # the weighted sum from the plan's own weights, rounded without the fix-up
    for dy in range(64):
        for dx in range(64):
            for i, pi in enumerate(plan.y.pos[dy]):
                for j, pj in enumerate(plan.x.pos[dx]):
                    exact[dy, dx] += (plan.y.coef[dy, i] * plan.x.coef[dx, j]
                                      * integral[plan.y.points[pi], plan.x.points[pj]])
    ref = cv2.resize(frame, (64, 64), interpolation=cv2.INTER_AREA)
    assert np.any(np.rint(exact).astype(np.uint8) != ref)  # the estimate alone would not be enough
    np.testing.assert_array_equal(area_resize.resize_area(frame, plan), ref)


def test_sizes_cv2_does_well_keep_cv2():
    assert area_resize.area_plan(480, 640, 48, 64) is None  # integer factors: cv2's fast path
    assert area_resize.area_plan(240, 320, 64, 64) is None  # small frame: cv2 is as fast
    assert area_resize.area_plan(480, 640, 64, 700) is None  # enlarging one axis: linear, not area
    frame = next(_frames(240, 320))
    np.testing.assert_array_equal(dec.to_model_input(frame, 64, 64), _reference_input(frame, 64, 64))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "mono8", "yuv422", "yuv422_yuy2", "nv12"])
def test_every_encoding_at_640x480_equals_reference(encoding):
    """Raw camera bytes (padded rows) -> input, against decoding with OpenCV/numpy then the reference path."""
    h, w, pad = 480, 640, 64
    if encoding in ("yuv422", "yuv422_yuy2", "nv12"):
        rows = h * 3 // 2 if encoding == "nv12" else h
        row_bytes = w if encoding == "nv12" else 2 * w
        packed = RNG.integers(0, 256, (rows, row_bytes), dtype=np.uint8)
        code = {"yuv422": cv2.COLOR_YUV2RGB_UYVY, "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2,
                "nv12": cv2.COLOR_YUV2RGB_NV12}[encoding]
        rgb = cv2.cvtColor(packed if encoding == "nv12" else packed.reshape(h, w, 2), code)
    else:
        channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "mono8": 1}[encoding]
        packed = RNG.integers(0, 256, (h, w * channels), dtype=np.uint8)
        pix = packed.reshape(h, w, channels)
        rgb = {"rgb8": pix, "bgr8": pix[:, :, ::-1], "rgba8": pix[:, :, :3],
               "mono8": np.concatenate([pix] * 3, axis=2)}[encoding]
    data = np.concatenate([packed, np.zeros((packed.shape[0], pad), np.uint8)], axis=1).tobytes()
    decoded = dec.decode_image(data, h, w, encoding, packed.shape[1] + pad)
    for crop in (None, "center"):
        np.testing.assert_array_equal(dec.to_model_input(decoded, 64, 64, crop), _reference_input(rgb, 64, 64, crop))


def test_rendered_sim_frames_equal_reference():
    """The simulated cell's camera at 640x480, as the node would receive it."""
    pytest.importorskip("mujoco", reason="mujoco not installed")
    from ami_world_model.sim.cell import SimCell
    from ami_world_model.sim.config import SimConfig

    cell = SimCell(SimConfig(image_height=480, image_width=640))
    try:
        for seed in range(3):
            cell.reset(seed=seed, task="push")
            frame = cell.render()
            for crop in (None, "center"):
                np.testing.assert_array_equal(dec.to_model_input(frame, 64, 64, crop),
                                              _reference_input(frame, 64, 64, crop))
    finally:
        cell.close()
