"""The Wilson score interval, which every accuracy this project reports carries: the report's
plot, the seed tables and their documents. Small test splits (50 to 250 questions) make an
accuracy without its interval easy to over-read."""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of the proportion correct / n (statsmodels' when installed,
    else the closed form; the two agree). n = 0: the whole of [0, 1]."""
    if n < 0 or not 0 <= correct <= n:
        raise ValueError(f"wilson_interval: need 0 <= correct <= n, got {correct} of {n}")
    if n == 0:
        return (0.0, 1.0)
    try:
        from statsmodels.stats.proportion import proportion_confint
    except ImportError:
        pass
    else:
        low, high = proportion_confint(correct, n, alpha=1 - confidence, method="wilson")
        return (max(0.0, float(low)), min(1.0, float(high)))
    from statistics import NormalDist

    z = Z95 if confidence == 0.95 else NormalDist().inv_cdf((1 + confidence) / 2)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))
