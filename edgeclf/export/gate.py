"""The gate's statistics: does a quantized file reproduce the float model, beyond the noise of the
images it was judged on?

The question needs no held-out labels (both models see the same images), so it is judged on the
validation split plus training images that calibration did not use (`export.gate_images` in all).
Each gate has three outcomes, never a silent one:

- pass: the evidence bounds the quantity within its limit (the interval's upper end is inside);
- fail: the evidence puts it beyond its limit (the interval's lower end is outside);
- inconclusive: neither (the images cannot resolve the limit); the artifact is kept as passing and
  the verdict and the CLI say that it was not proven.

Accuracy drop (int8, dynamic): the paired difference of the float model's and the file's accuracy
on the same images, with Newcombe's interval for a difference of paired proportions (Newcombe 1998,
method 10: Wilson score intervals of both accuracies combined with the phi correlation of the 2x2
table of right/wrong pairs; it behaves with zero cells, unlike the Wald interval). Only the
discordant pairs move it: b (float right, file wrong) against c (float wrong, file right). Recorded
beside it: McNemar's exact test of "no drop" (one-sided, b against c). One image is worth 100 / n
points, so on 55 images (1.8 points) a 1-point limit cannot be resolved.

Rates (bf16: images whose largest probability difference is over the tolerance, i.e. the 99th
percentile bound; top-1 disagreements): the exceedance count is binomial; the Clopper-Pearson
interval of its rate is compared with the allowed rate (1 % for a 99th percentile, 1 -
bf16_min_agreement for agreement).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist


@dataclass
class GateEvidence:
    """One gate's decision and the numbers behind it (written into the artifact's validation record)."""

    decision: str  # pass | fail | inconclusive
    quantity: str  # drop_points | exceed_rate | disagreement_rate
    images: int
    estimate: float
    interval: tuple[float, float]
    limit: float
    points_per_image: float | None = None
    float_right_file_wrong: int | None = None
    float_wrong_file_right: int | None = None
    p_value_no_drop: float | None = None
    count: int | None = None
    level: float = 0.95  # of the two-sided interval (export.gate_confidence)

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out["interval"] = [round(self.interval[0], 4), round(self.interval[1], 4)]
        out["estimate"] = round(self.estimate, 4)
        return out

    def summary(self) -> str:
        """One line: what was measured on how many images, and what that can resolve."""
        if self.quantity == "drop_points":
            lo, hi = self.interval
            return (
                f"on {self.images} images the drop is {self.estimate:.2f} points ({self.level:.0%} interval "
                f"{lo:+.2f}..{hi:+.2f}; one image = {self.points_per_image:.2f} points), limit {self.limit:g}"
            )
        lo, hi = (100 * v for v in self.interval)
        what = "over the tolerance" if self.quantity == "exceed_rate" else "disagreeing with the float model"
        return (
            f"on {self.images} images {self.count} ({100 * self.estimate:.2f} %) {what} ({self.level:.0%} interval "
            f"{lo:.2f}..{hi:.2f} %), limit {100 * self.limit:g} %"
        )


def _z(level: float) -> float:
    return NormalDist().inv_cdf(1 - (1 - level) / 2)


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion."""
    Z = _z(level)  # noqa: N806
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_paired(a: int, b: int, c: int, d: int, level: float = 0.95) -> tuple[float, float, float]:
    """(difference, lower, upper) of p1 - p2 for paired proportions, p1 = (a + b) / n and
    p2 = (a + c) / n: Newcombe's method 10 with the continuity-corrected phi."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n, level)
    l2, u2 = wilson(a + c, n, level)
    denominator = (a + b) * (c + d) * (a + c) * (b + d)
    if denominator == 0:
        phi = 0.0
    else:
        numerator = a * d - b * c
        numerator = max(numerator - n / 2, 0.0) if numerator > 0 else numerator
        phi = numerator / math.sqrt(denominator)
    diff = p1 - p2
    lower = diff - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    upper = diff + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return diff, max(-1.0, lower), min(1.0, upper)


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (n up to a few hundred thousand)."""
    if k <= 0:
        return 1.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial rate, found by bisection on the tails."""
    alpha = (1 - level) / 2

    def solve(condition) -> float:
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if condition(mid) else (lo, mid)
        return (lo + hi) / 2

    lower = 0.0 if k == 0 else solve(lambda p: binomial_tail(k, n, p) < alpha)
    upper = 1.0 if k == n else solve(lambda p: 1 - binomial_tail(k + 1, n, p) > alpha)
    return lower, upper


def _decide(lower: float, upper: float, limit: float) -> str:
    if lower > limit:
        return "fail"
    if upper <= limit:
        return "pass"
    return "inconclusive"


def accuracy_drop_gate(float_right, file_right, max_drop_points: float, level: float = 0.95) -> GateEvidence:
    """The accuracy-drop gate from per-image correctness of the float model and of the file."""
    pairs = list(zip((bool(v) for v in float_right), (bool(v) for v in file_right), strict=True))
    a = sum(1 for f, q in pairs if f and q)
    b = sum(1 for f, q in pairs if f and not q)
    c = sum(1 for f, q in pairs if not f and q)
    d = len(pairs) - a - b - c
    diff, lower, upper = newcombe_paired(a, b, c, d, level)
    return GateEvidence(
        decision=_decide(lower * 100, upper * 100, max_drop_points),
        quantity="drop_points",
        images=len(pairs),
        estimate=diff * 100,
        interval=(lower * 100, upper * 100),
        limit=max_drop_points,
        points_per_image=100 / len(pairs),
        float_right_file_wrong=b,
        float_wrong_file_right=c,
        p_value_no_drop=round(binomial_tail(b, b + c, 0.5), 6) if b + c else 1.0,
        level=level,
    )


def rate_gate(count: int, n: int, allowed_rate: float, quantity: str, level: float = 0.95) -> GateEvidence:
    """A binomial rate (exceedances, disagreements) against the rate allowed."""
    lower, upper = clopper_pearson(count, n, level)
    return GateEvidence(
        decision=_decide(lower, upper, allowed_rate),
        quantity=quantity,
        images=n,
        estimate=count / n,
        interval=(lower, upper),
        limit=allowed_rate,
        count=count,
        level=level,
    )
