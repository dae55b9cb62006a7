"""Each drift statistic against a case computed by hand (the arithmetic is in the test)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deployer.config import DriftConfig
from deployer.monitoring import stats
from deployer.monitoring.drift import judge, over_thresholds
from deployer.serving.baseline_bins import Distribution

HALVES = Distribution("categorical", (0.5, 0.5, 0.0), categories=("a", "b"))


def test_psi_of_a_30_70_split_against_halves() -> None:
    # (0.3 - 0.5) ln(0.3 / 0.5) + (0.7 - 0.5) ln(0.7 / 0.5); the empty "other" bin adds
    # (1e-4 - 1e-4) ln(1) = 0
    hand = (-0.2) * math.log(0.6) + 0.2 * math.log(1.4)
    assert hand == pytest.approx(0.1694596, abs=1e-7)
    found = stats.compare(HALVES, ["a"] * 30 + ["b"] * 70)
    assert found.psi == pytest.approx(hand, rel=1e-9)


def test_ks_of_a_shifted_sample_against_the_baseline_quantiles() -> None:
    # baseline sample 1 2 3 4, live 3 4 5 6: at x = 2 the ECDFs are 0.5 and 0; at x = 4,
    # 1 and 0.5; never further apart: D = 0.5
    numeric = Distribution("numeric", (0.5, 0.5), edges=(2.5,), quantiles=(1, 2, 3, 4))
    assert stats.compare(numeric, [3, 4, 5, 6]).ks == pytest.approx(0.5)
    assert stats.compare(numeric, [None, "x", 3.0, 4, 5, 6]).ks == pytest.approx(0.5)
    assert stats.compare(HALVES, ["a"]).ks is None  # categories have no KS


def test_jensen_shannon_distance_base_2() -> None:
    # p = (0.5, 0.5), q = (1, 0), m = (0.75, 0.25)
    # KL(p||m) = 0.5 log2(0.5/0.75) + 0.5 log2(0.5/0.25) = 0.2075187
    # KL(q||m) = log2(1/0.75) = 0.4150375
    # JS distance = sqrt((0.2075187 + 0.4150375) / 2) = 0.5579230
    kl_p = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    kl_q = math.log2(1 / 0.75)
    hand = math.sqrt((kl_p + kl_q) / 2)
    assert hand == pytest.approx(0.5579230, abs=1e-7)
    assert stats.compare(HALVES, ["a"] * 7).js == pytest.approx(hand, rel=1e-9)
    assert stats.compare(HALVES, ["a", "b"]).js == pytest.approx(0.0, abs=1e-9)


def test_chi_squared_p_value_of_expected_against_live_counts() -> None:
    # 100 live rows, the baseline expects 50/50 ("other": 0 and 0, left out):
    # table [[50, 50], [30, 70]]; row sums 100, 100; column sums 80, 120; expected cells
    # 40 60 / 40 60; chi2 = 2 * (10^2/40 + 10^2/60) = 8.3333 with 1 degree of freedom,
    # whose p-value is erfc(sqrt(chi2 / 2)) = 0.003892
    chi2 = 2 * (100 / 40 + 100 / 60)
    hand = math.erfc(math.sqrt(chi2 / 2))
    assert hand == pytest.approx(0.003892, abs=1e-6)
    found = stats.compare(HALVES, ["a"] * 30 + ["b"] * 70)
    assert found.chi2_p == pytest.approx(hand, rel=1e-9)
    # the baseline's own rows (100 with a value): the same table, the same p-value
    assert stats.compare(HALVES, ["a"] * 30 + ["b"] * 70, 100).chi2_p == pytest.approx(hand)
    # 300 baseline rows: [[150, 150], [30, 70]]; sums 300, 100 / 180, 220 / 400; expected
    # 135 165 / 45 55; chi2 = 15^2 (1/135 + 1/165 + 1/45 + 1/55) = 12.1212
    chi2 = 225 * (1 / 135 + 1 / 165 + 1 / 45 + 1 / 55)
    assert chi2 == pytest.approx(12.1212, abs=1e-4)
    wider = stats.compare(HALVES, ["a"] * 30 + ["b"] * 70, 300).chi2_p
    assert wider == pytest.approx(math.erfc(math.sqrt(chi2 / 2)), rel=1e-9)


def test_no_live_values_gives_no_statistics() -> None:
    found = stats.compare(HALVES, [None, None])
    assert found == stats.Statistics(None, None, None, None)


def test_verdicts_against_the_thresholds() -> None:
    limits = DriftConfig(psi=0.1, ks=0.9, js=0.9, chi2_p=0.001, min_rows=100)
    shifted = ["a"] * 30 + ["b"] * 70  # psi 0.169 > 0.1; chi2 p 0.0039 > 0.001
    assert over_thresholds(stats.compare(HALVES, shifted), limits) == ("psi",)
    assert judge("f", HALVES, shifted, True, limits).verdict == "drift"
    assert judge("f", HALVES, ["a", "b"] * 50, True, limits).verdict == "ok"
    few = judge("f", HALVES, ["a"] * 99, True, limits)
    assert (few.verdict, few.over) == ("not enough data", ())
    absent = judge("f", HALVES, [None] * 200, False, limits)
    assert absent.verdict == "not captured"
    assert absent.missing == 1.0
    assert np.isclose(judge("f", HALVES, ["a", None] * 60, True, limits).missing, 0.5)
