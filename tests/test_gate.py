"""The quantization gates' statistics (edgeclf.export.gate): intervals checked against SciPy and by
simulated coverage, and the three decisions on the cases that matter (one image of a small split,
a faithful file on many images, a collapsed file on few)."""

import numpy as np
import pytest

from edgeclf.export.gate import (
    accuracy_drop_gate,
    binomial_tail,
    clopper_pearson,
    newcombe_paired,
    rate_gate,
    wilson,
)


def _pairs(both, float_only, file_only, neither):
    float_right = [1] * both + [1] * float_only + [0] * file_only + [0] * neither
    file_right = [1] * both + [0] * float_only + [1] * file_only + [0] * neither
    return float_right, file_right


def test_exact_tails_and_intervals_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for k, n, p in [(0, 10, 0.3), (5, 20, 0.3), (40, 55, 0.5), (3, 1000, 0.01), (990, 1000, 0.99)]:
        assert binomial_tail(k, n, p) == pytest.approx(stats.binom.sf(k - 1, n, p), rel=1e-9, abs=1e-300)
    for k, n in [(0, 55), (3, 55), (55, 55), (12, 1000)]:
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
        assert clopper_pearson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


@pytest.mark.parametrize("n, true_b, true_c", [(55, 0.04, 0.02), (300, 0.02, 0.01), (1000, 0.01, 0.01)])
def test_newcombes_interval_covers_the_true_drop(n, true_b, true_c):
    """Simulated coverage of the 95 % interval stays near its level (Newcombe's method 10 is
    slightly conservative): a gate that fails on noise would show as low coverage."""
    rng = np.random.default_rng(0)
    truth, covered, runs = true_b - true_c, 0, 1000
    for _ in range(runs):
        cells = rng.multinomial(n, [0.8 - true_b, true_b, true_c, 0.2 - true_c])
        _, lower, upper = newcombe_paired(*cells)
        covered += lower <= truth <= upper
    assert 0.93 <= covered / runs <= 0.995


def test_one_image_of_a_small_split_is_inconclusive_not_a_failure():
    """The case that failed users: 55 validation images, the int8 file gets one more wrong."""
    evidence = accuracy_drop_gate(*_pairs(28, 1, 0, 26), max_drop_points=1.0)
    assert evidence.estimate == pytest.approx(100 / 55) and evidence.points_per_image == pytest.approx(1.818, abs=1e-3)
    assert evidence.decision == "inconclusive"
    assert evidence.interval[0] < 1.0 < evidence.interval[1]
    assert (
        "on 55 images the drop is 1.82 points" in evidence.summary() and "one image = 1.82 points" in evidence.summary()
    )


def test_a_faithful_file_on_many_images_passes_and_a_collapsed_one_fails_even_on_few():
    faithful = accuracy_drop_gate(*_pairs(900, 4, 3, 93), max_drop_points=1.0)
    assert faithful.decision == "pass" and faithful.interval[1] <= 1.0
    collapsed = accuracy_drop_gate(*_pairs(10, 40, 0, 5), max_drop_points=1.0)  # 91 % -> 18 %
    assert collapsed.decision == "fail" and collapsed.interval[0] > 1.0
    assert collapsed.p_value_no_drop < 1e-9
    # a real 3-point drop on 2,000 images is beyond a 1-point limit
    assert accuracy_drop_gate(*_pairs(1700, 80, 20, 200), max_drop_points=1.0).decision == "fail"
    # ... and within a 5-point one
    assert accuracy_drop_gate(*_pairs(1700, 80, 20, 200), max_drop_points=5.0).decision == "pass"


def test_rates_for_bf16():
    assert rate_gate(0, 1000, 0.01, "exceed_rate").decision == "pass"  # upper bound 0.37 %
    assert rate_gate(0, 55, 0.01, "exceed_rate").decision == "inconclusive"  # 55 images cannot bound 1 %
    assert rate_gate(1, 55, 0.01, "exceed_rate").decision == "inconclusive"  # one image is 1.8 %
    assert rate_gate(30, 1000, 0.01, "exceed_rate").decision == "fail"
    assert rate_gate(20, 55, 0.01, "disagreement_rate").decision == "fail"
