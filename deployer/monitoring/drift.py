"""``deployer drift``: per feature and for the predictions, the live values' statistics
against the baseline and a verdict against ``monitoring.drift``'s thresholds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from deployer.config import DriftConfig
from deployer.monitoring import stats
from deployer.monitoring.live import LiveData, collect
from deployer.providers.monitoring import CapturedRecord, format_time
from deployer.serving.baseline_bins import Distribution, read_baseline

Verdict = Literal["drift", "ok", "not enough data", "not captured"]
PREDICTION = "(prediction)"  # the predictions' row in the report


@dataclass(frozen=True)
class FeatureDrift:
    """One feature (or the predictions): its statistics, which went over their threshold,
    and the verdict. ``values`` are the live values (for ``--report``), not in ``to_dict``."""

    name: str
    kind: str
    rows: int
    missing: float
    baseline_missing: float
    statistics: stats.Statistics
    over: tuple[str, ...]
    verdict: Verdict
    values: list[Any] = field(default_factory=list, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "missing": self.missing,
            "baseline_missing": self.baseline_missing,
            **self.statistics.to_dict(),
            "over": list(self.over),
            "verdict": self.verdict,
        }


@dataclass
class DriftReport:
    """What ``deployer drift`` found on one target."""

    target: str
    since: str | None
    records: int
    rows: int
    first: str | None
    last: str | None
    thresholds: dict[str, float]
    features: list[FeatureDrift]
    baseline: dict[str, Any]
    report: str | None = None

    @property
    def drifted(self) -> list[str]:
        return [f.name for f in self.features if f.verdict == "drift"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "since": self.since,
            "records": self.records,
            "rows": self.rows,
            "first": self.first,
            "last": self.last,
            "thresholds": self.thresholds,
            "drift": bool(self.drifted),
            "drifted": self.drifted,
            "features": [f.to_dict() for f in self.features],
            "baseline": {k: self.baseline.get(k) for k in ("data", "created_at", "inputs")},
            "report": self.report,
        }


def over_thresholds(found: stats.Statistics, limits: DriftConfig) -> tuple[str, ...]:
    """The statistics past their threshold: PSI, KS, JS above; chi-squared's p below."""
    over = []
    if found.psi is not None and found.psi > limits.psi:
        over.append("psi")
    if found.ks is not None and found.ks > limits.ks:
        over.append("ks")
    if found.js is not None and found.js > limits.js:
        over.append("js")
    if found.chi2_p is not None and found.chi2_p < limits.chi2_p:
        over.append("chi2_p")
    return tuple(over)


def judge(
    name: str,
    expected: Distribution,
    values: list[Any],
    captured: bool,
    limits: DriftConfig,
    baseline_rows: int | None = None,
) -> FeatureDrift:
    """One feature's statistics and verdict; under ``min_rows`` rows: no verdict.
    ``baseline_rows``: the training data's rows (its present values count for chi-squared)."""
    present = baseline_rows * (1.0 - expected.missing) if baseline_rows else None
    found = (
        stats.compare(expected, values, present)
        if values
        else stats.Statistics(None, None, None, None)
    )
    missing = sum(1 for v in values if v is None or v != v) / len(values) if values else 0.0
    if not captured:
        verdict: Verdict = "not captured"
    elif len(values) < limits.min_rows:
        verdict = "not enough data"
    else:
        verdict = "drift" if over_thresholds(found, limits) else "ok"
    over = over_thresholds(found, limits) if verdict in ("drift", "ok") else ()
    return FeatureDrift(
        name, expected.kind, len(values), missing, expected.missing, found, over, verdict, values
    )


def measure(
    target: str,
    baseline: Mapping[str, Any],
    records: Iterable[CapturedRecord],
    limits: DriftConfig,
    since: str | None = None,
) -> DriftReport:
    """Compare the captured ``records`` with ``baseline`` (deployer.lock's) feature by
    feature, then the predictions."""
    try:
        features, prediction = read_baseline(baseline)
    except ValueError as exc:
        from deployer.errors import ConfigError

        raise ConfigError(
            "deployer.lock", [str(exc)], hint="record it again: deployer baseline --data ..."
        ) from None
    inputs = baseline.get("inputs")
    names = [str(n) for n in inputs] if isinstance(inputs, list) else list(features)
    live: LiveData = collect(records, features, names)
    rows = _rows(baseline)
    judged = [
        judge(name, dist, live.values[name], name in live.present, limits, rows)
        for name, dist in features.items()
    ]
    if prediction is not None:
        captured = any(p is not None for p in live.predictions)
        judged.append(judge(PREDICTION, prediction, live.predictions, captured, limits, rows))
    return DriftReport(
        target=target,
        since=since,
        records=live.records,
        rows=live.rows,
        first=format_time(live.first) if live.first else None,
        last=format_time(live.last) if live.last else None,
        thresholds={k: float(v) for k, v in limits.model_dump().items()},
        features=judged,
        baseline=dict(baseline),
    )


def _rows(baseline: Mapping[str, Any]) -> int | None:
    """The training data's row count as the baseline recorded it, or None."""
    data = baseline.get("data")
    rows = data.get("rows") if isinstance(data, Mapping) else None
    return rows if isinstance(rows, int) and not isinstance(rows, bool) and rows > 0 else None
