"""Live values against one baseline distribution: the statistics the clouds' own monitors
report, from scipy (imported when called) and ``baseline_bins.psi``.

- PSI: ``baseline_bins.psi`` of the live counts per bin against the baseline shares.
- Kolmogorov-Smirnov: ``scipy.stats.ks_2samp`` of the live numbers against the baseline's
  101 quantiles taken as a sample (numeric features only).
- Jensen-Shannon distance: ``scipy.spatial.distance.jensenshannon`` of the baseline shares
  and the live shares per bin, base 2 (0: the same, 1: disjoint).
- Chi-squared: ``scipy.stats.chi2_contingency`` (no continuity correction) of a 2 x k
  table, the baseline's counts per bin (its shares x its rows with a value; without the
  row count, as many as were seen live) against the live counts, bins empty in both left
  out; its p-value. The baseline is a sample too: a test of the two samples' homogeneity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deployer.errors import MissingDependencyError
from deployer.serving.baseline_bins import Distribution, psi


@dataclass(frozen=True)
class Statistics:
    """One feature's statistics; None where one does not apply (KS of categories) or
    cannot be computed (no live values)."""

    psi: float | None
    ks: float | None
    js: float | None
    chi2_p: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {"psi": self.psi, "ks": self.ks, "js": self.js, "chi2_p": self.chi2_p}


def _scipy() -> Any:
    try:
        import scipy.spatial.distance
        import scipy.stats
    except ImportError:
        raise MissingDependencyError(
            "deployer drift needs scipy, which is not installed",
            hint="pip install 'deployer[evaluate]'",
        ) from None
    return scipy


def population_stability(expected: Distribution, counts: np.ndarray) -> float | None:
    value = psi(expected.fractions, counts)
    return None if math.isnan(value) else value


def kolmogorov_smirnov(expected: Distribution, values: Sequence[Any] | np.ndarray) -> float | None:
    """The KS statistic of the live numbers against the baseline's quantiles."""
    if expected.kind != "numeric" or not expected.quantiles:
        return None
    numbers = _numbers(values)
    if not numbers.size:
        return None
    result = _scipy().stats.ks_2samp(numbers, np.asarray(expected.quantiles))
    return float(result.statistic)


def jensen_shannon(expected: Distribution, counts: np.ndarray) -> float | None:
    """The Jensen-Shannon distance (base 2) of the baseline and live shares per bin."""
    total = float(np.sum(counts))
    if total <= 0:
        return None
    distance = _scipy().spatial.distance.jensenshannon(
        np.asarray(expected.fractions, dtype=np.float64), counts / total, base=2
    )
    return float(distance)


def chi_squared_p(
    expected: Distribution, counts: np.ndarray, baseline_rows: float | None = None
) -> float | None:
    """The p-value of the live counts against the baseline's (see the module's docstring)."""
    total = float(np.sum(counts))
    if total <= 0:
        return None
    rows = baseline_rows if baseline_rows and baseline_rows > 0 else total
    table = np.vstack([np.asarray(expected.fractions) * rows, counts.astype(np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0  # everything in one bin, in both: nothing to tell apart
    result = _scipy().stats.chi2_contingency(table, correction=False)
    return float(result.pvalue)


def compare(
    expected: Distribution,
    values: Sequence[Any] | np.ndarray,
    baseline_rows: float | None = None,
) -> Statistics:
    """Every statistic of the live ``values`` (missing ones left out) against ``expected``,
    whose data set had ``baseline_rows`` values (for chi-squared)."""
    counts, _missing = expected.counts(values)
    counts = np.asarray(counts, dtype=np.float64)
    return Statistics(
        psi=population_stability(expected, counts),
        ks=kolmogorov_smirnov(expected, values),
        js=jensen_shannon(expected, counts),
        chi2_p=chi_squared_p(expected, counts, baseline_rows),
    )


def _numbers(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    out = []
    for value in values:
        if value is None or isinstance(value, bool):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isnan(number):
            out.append(number)
    return np.asarray(out, dtype=np.float64)
