"""OpenCV's INTER_AREA downscale: the same uint8 pixels as ``cv2.resize``, faster on camera-sized frames.

Why: at 640x480 -> 64x64 ``cv2.resize(INTER_AREA)`` takes its general (non-integer scale) path, a scalar
loop that runs on one thread (the output is too small for OpenCV to split) and is nearly all of the camera
frame -> model input time. The pixels must not change: training (from bags) and planning (the node) both go
through this resize, and a checkpoint has learnt OpenCV's pixels.

How: OpenCV computes each output as float32 sums of ``src * weight`` in a fixed order, then rounds to the
nearest integer. Here the same weighted sum is computed from an integral image (exact int32 box sums, one
SIMD pass) in float64, which is within ``band`` of OpenCV's float32 value. Rounding both gives the same
integer unless the value lies within ``band`` of a half; those few pixels (about 75 of 12288 at 640x480,
nearly all exact halves: the weights there are multiples of 1/150) are recomputed with OpenCV's own float32
operations in OpenCV's order (``_exact``). The tables replicate ``computeResizeAreaTab`` in
modules/imgproc/src/resize.cpp; the tests compare with ``cv2.resize`` itself (test_area_resize.py).
Measured against cv2.resize in one process: 1.4x at 640x480, 1.5x at a 480x480 centre crop, 2.2x at
1280x720 (-> 64x64); below MIN_PIXELS cv2.resize is used.
"""
from __future__ import annotations

import functools
import math
from typing import List, NamedTuple, Optional, Tuple

import numpy as np

INT32_SUM_LIMIT = 2**31 // 255  # pixels per channel whose integral still fits int32
# Below this many source pixels cv2.resize is as fast (cv2 time / ours: 0.9 at 400x300, 1.3 at 480x360):
# the numpy calls after the integral image cost a fixed ~0.2 ms.
MIN_PIXELS = 150_000
ROUNDOFF = 2.0**-24  # float32 unit roundoff


class _Axis(NamedTuple):
    """One axis of the resize: what OpenCV sums (``idx``/``w``) and the same sum from prefix sums."""

    idx: np.ndarray  # [n_out, k] source indices in OpenCV's order, padded with 0 (weight 0)
    w: np.ndarray  # [n_out, k] float32 weights as OpenCV stores them
    points: np.ndarray  # [p] the prefix-sum positions used, ascending
    pos: np.ndarray  # [n_out, m] index into ``points`` (m <= 4: partial, full run, partial, end)
    coef: np.ndarray  # [n_out, m] float64: sum_k w_k src[idx_k] == sum_i coef_i prefix[points[pos_i]]


class AreaPlan(NamedTuple):
    """Everything that depends only on (source size, output size): built once per camera size."""

    y: _Axis
    x: _Axis
    grid: np.ndarray  # [px * py * C] flat positions of (x point, y point, channel) in the integral image
    band: float  # |float64 estimate - OpenCV's float32 value| < band (a rigorous bound, doubled)


def _cv_area_table(ssize: int, dsize: int) -> List[List[Tuple[int, float]]]:
    """computeResizeAreaTab: per output index, its (source index, float32 weight) entries in OpenCV's order."""
    scale = 1.0 / (dsize / ssize)  # as OpenCV: 1 / inv_scale, in double
    table = []
    for d in range(dsize):
        f1 = d * scale
        f2 = f1 + scale
        cell = min(scale, ssize - f1)
        s2 = min(math.floor(f2), ssize - 1)
        s1 = min(math.ceil(f1), s2)
        entries = []
        if s1 - f1 > 1e-3:
            entries.append((s1 - 1, float(np.float32((s1 - f1) / cell))))
        entries += [(s, float(np.float32(1.0 / cell))) for s in range(s1, s2)]
        if f2 - s2 > 1e-3:
            entries.append((s2, float(np.float32(min(min(f2 - s2, 1.0), cell) / cell))))
        table.append(entries)
    return table


def _axis(ssize: int, dsize: int) -> _Axis:
    table = _cv_area_table(ssize, dsize)
    k = max(len(e) for e in table)
    idx = np.zeros((dsize, k), np.intp)
    w = np.zeros((dsize, k), np.float32)
    steps = []
    for d, entries in enumerate(table):
        first = entries[0][0]
        weights = [a for _, a in entries]
        idx[d, :len(entries)] = [s for s, _ in entries]  # consecutive source indices, first..first+n-1
        w[d, :len(entries)] = weights
        # sum_j a_j (P[first+j+1] - P[first+j]) = sum_p (a_{p-1} - a_p) P[first+p]: nonzero where a changes
        steps.append([(first + p, lo - hi) for p, (lo, hi) in enumerate(zip([0.0] + weights, weights + [0.0]))
                      if lo != hi])
    m = max(len(s) for s in steps)
    pts = np.zeros((dsize, m), np.intp)
    coef = np.zeros((dsize, m))  # padding: coefficient 0 at point 0
    for d, row in enumerate(steps):
        for i, (p, c) in enumerate(row):
            pts[d, i], coef[d, i] = p, c
    points, pos = np.unique(pts, return_inverse=True)
    return _Axis(idx, w, points, pos.reshape(pts.shape), coef)


def is_cv_area_fast(h0: int, w0: int, height: int, width: int) -> bool:
    """Whether cv2.resize takes its integer-factor INTER_AREA path (already fast, different arithmetic)."""
    sx, sy = 1.0 / (width / w0), 1.0 / (height / h0)
    return abs(sx - round(sx)) < 2.220446049250313e-16 and abs(sy - round(sy)) < 2.220446049250313e-16


@functools.lru_cache(maxsize=16)
def area_plan(h0: int, w0: int, height: int, width: int, channels: int = 3) -> Optional[AreaPlan]:
    """The plan for an [h0, w0] -> [height, width] shrink, or None where cv2.resize should do it itself:
    not a shrink on both axes, cv2's integer-factor path, a small frame (cv2 is as fast), or a frame whose
    int32 integral could overflow."""
    if not (height <= h0 and width <= w0) or is_cv_area_fast(h0, w0, height, width):
        return None
    if h0 * w0 < MIN_PIXELS or (h0 + 1) * (w0 + 1) > INT32_SUM_LIMIT:
        return None
    y, x = _axis(h0, height), _axis(w0, width)
    cell = x.points[:, None] + y.points[None, :] * (w0 + 1)  # [px, py] x-major: gathers run along axis 0
    grid = (cell[:, :, None] * channels + np.arange(channels)).ravel()
    # OpenCV: float32 running sums of non-negative terms, horizontal (k_x terms, each <= 255 * weight) then
    # vertical (k_y terms): |error| <= (k_x + k_y + 2) * u * 256. Doubled, plus the float64 estimate's own.
    band = 2.0 * (x.w.shape[1] + y.w.shape[1] + 2) * 256.0 * ROUNDOFF + 1e-6
    return AreaPlan(y, x, grid, band)


def resize_area(src: np.ndarray, plan: AreaPlan) -> np.ndarray:
    """[h0, w0, C] uint8 -> [height, width, C] uint8, equal to cv2.resize(src, (width, height), INTER_AREA).

    ``src`` may be a view with a row stride (a crop); other layouts are copied first.
    """
    import cv2

    if src.strides[1:] != (src.shape[2], 1):
        src = np.ascontiguousarray(src)  # e.g. rgba viewed as rgb: the integral needs packed pixels
    y, x = plan.y, plan.x
    integral = cv2.integral(src, sdepth=cv2.CV_32S)  # [h0 + 1, w0 + 1, C] exact box sums
    g = integral.ravel().take(plan.grid).astype(np.float64)  # [px * py * C]
    g = g.reshape(len(x.points), len(y.points), src.shape[2])  # x-major: the gather below runs along axis 0
    cols = np.einsum("wjpc,wj->pwc", g.take(x.pos, axis=0), x.coef)  # [py, W, C]: x summed, per y point
    rows = cols.take(y.pos, axis=0).reshape(y.pos.shape + (-1,))  # [H, m_y, W * C]
    value = np.einsum("hiq,hi->hq", rows, y.coef).reshape(len(y.pos), len(x.pos), -1)  # [H, W, C] ~ OpenCV's
    out = np.rint(value)
    np.subtract(value, out, out=value)
    near_half = np.flatnonzero(np.abs(value, out=value) > 0.5 - plan.band)  # flat: np.nonzero is slower
    out = out.astype(np.uint8)
    if near_half.size:
        pixel, ch = np.divmod(near_half, src.shape[2])
        out.reshape(-1)[near_half] = _exact(src, plan, *np.divmod(pixel, len(x.pos)), ch)
    return out


def _exact(src: np.ndarray, plan: AreaPlan, dy: np.ndarray, dx: np.ndarray, ch: np.ndarray) -> np.ndarray:
    """OpenCV's float32 arithmetic for the given output pixels: per source row, the running sum of
    src * x-weight; then the running sum of row * y-weight; then round half to even and saturate."""
    y, x = plan.y, plan.x
    span = src.strides[0] * (src.shape[0] - 1) + src.shape[1] * src.shape[2]  # bytes from the first pixel
    flat = np.lib.stride_tricks.as_strided(src, shape=(span,), strides=(1,), writeable=False)  # packed rows
    across = (x.idx[dx] * src.shape[2] + ch[:, None]).T  # [k_x, M] byte offsets within a row
    down = y.idx[dy] * src.strides[0]  # [M, k_y] row offsets
    vals = flat.take(across[:, :, None] + down)  # [k_x, M, k_y] uint8: the summed axis first, as OpenCV's loops
    terms = np.multiply(vals, x.w[dx].T[:, :, None], dtype=np.float32)  # uint8 -> float32 is exact
    row = np.add.accumulate(terms, axis=0)[-1]  # [M, k_y] running float32 sums, in OpenCV's order
    total = np.add.accumulate((row * y.w[dy]).T, axis=0)[-1]  # [M]
    return np.rint(total).astype(np.uint8)  # weights sum to 1: total <= 255 + a few ulp, no saturation
