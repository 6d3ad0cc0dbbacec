"""Confidence intervals for success rates (a handful of episodes is a wide interval: say how wide)."""
from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> Tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    Unlike the normal (Wald) interval it stays inside [0, 1] and is not zero-width at 0/n or n/n, which
    is where small evaluations often land.

    Args:
        successes: number of successes k, 0 <= k <= n.
        n: number of trials (episodes), >= 1.
        z: normal quantile (1.96 for 95 %).
    Returns:
        ``(low, high)``.
    """
    if isinstance(successes, bool) or isinstance(n, bool) or int(successes) != successes or int(n) != n:
        raise ValueError(f"wilson_interval needs integer counts, got {successes!r} of {n!r}")
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"wilson_interval needs 0 <= successes <= n and n >= 1, got {successes} of {n}")
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"z must be positive and finite, got {z}")
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # Clamp float rounding at the ends (k = 0 or k = n give exactly 0 / 1 analytically).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def success_summary(flags: Sequence[bool], z: float = Z95) -> Dict[str, float]:
    """``{"n", "successes", "rate", "ci_low", "ci_high"}`` for per-episode success flags (NaN when empty)."""
    n = len(flags)
    k = int(sum(bool(f) for f in flags))
    if n == 0:
        nan = float("nan")
        return {"n": 0, "successes": 0, "rate": nan, "ci_low": nan, "ci_high": nan}
    low, high = wilson_interval(k, n, z)
    return {"n": n, "successes": k, "rate": k / n, "ci_low": low, "ci_high": high}


def format_rate(summary: Dict[str, float]) -> str:
    """``"80% [49-94]"``: the rate and its 95 % interval in percent; ``"-"`` when nothing was measured."""
    if not summary.get("n"):
        return "-"
    return f"{summary['rate']:.0%} [{summary['ci_low'] * 100:.0f}-{summary['ci_high'] * 100:.0f}]"
