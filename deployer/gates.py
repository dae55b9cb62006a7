"""Release gates: ``release.gates`` of deployer.yaml, parsed and evaluated.

A gate is ``METRIC OP VALUE``: METRIC one of ``METRICS`` (what ``deployer evaluate``
records), OP one of ``>= <= > < == !=``, VALUE a number, ``live`` or ``previous``,
optionally ``+ N`` or ``- N`` (``roc_auc >= live - 0.01``). The new model's value comes
from deployer.lock's evaluation (only while it belongs to the current model); ``live`` is
the metric recorded for the version live on a target now, ``previous`` for the version
before it there (both looked up by the caller, see ``deployer.audit.lookup``). A gate
with a number is evaluated once; one with ``live``/``previous`` once per target. No
version to compare with (a first push) passes with a note; a value that is unknown
(no evaluation, a stale one, a live version whose push recorded no metrics) fails,
saying why. Standard library only.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

METRICS = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "mae",
    "mse",
    "rmse",
    "r2",
)
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
Reference = Literal["number", "live", "previous"]
_UNSIGNED = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_SHAPE = re.compile(r"\s*([A-Za-z_][\w]*)\s*([<>=!]+)\s*(.*?)\s*")
_VALUE = re.compile(rf"(?:(live|previous)(?:\s*([-+])\s*({_UNSIGNED}))?|([-+]?{_UNSIGNED}))")
EVALUATE_HINT = "run `deployer evaluate --data HOLDOUT --label COLUMN` for this model"


@dataclass(frozen=True)
class Gate:
    """One parsed gate: ``metric op reference [+/- offset]`` or ``metric op number``."""

    text: str
    metric: str
    op: str
    reference: Reference
    number: float  # the threshold (reference number) or the offset added to live/previous

    def threshold(self, base: float) -> float:
        """The threshold against ``base`` (the live/previous value; ignored for a number)."""
        return self.number if self.reference == "number" else base + self.number

    def holds(self, value: float, threshold: float) -> bool:
        return OPERATORS[self.op](value, threshold)


def parse_gate(text: str) -> Gate:
    """Parse one gate; a ValueError naming the gate and what was expected."""
    shape = _SHAPE.fullmatch(text)
    expected = (
        "expected METRIC OP VALUE, OP one of "
        + ", ".join(OPERATORS)
        + "; VALUE a number, live or previous (optionally + or - a number)"
    )
    if not shape:
        raise ValueError(f"gate {text!r}: {expected}")
    metric, op, rest = shape.groups()
    if metric not in METRICS:
        raise ValueError(
            f"gate {text!r}: unknown metric {metric!r}; expected one of {', '.join(METRICS)}"
        )
    if op not in OPERATORS:
        raise ValueError(f"gate {text!r}: unknown operator {op!r}; {expected}")
    value = _VALUE.fullmatch(rest)
    if not value:
        raise ValueError(f"gate {text!r}: cannot read the value {rest!r}; {expected}")
    reference, sign, offset, number = value.groups()
    if number is not None:
        return Gate(text, metric, op, "number", float(number))
    delta = float(offset or 0) * (-1 if sign == "-" else 1)
    return Gate(text, metric, op, "live" if reference == "live" else "previous", delta)


@dataclass(frozen=True)
class Baseline:
    """A target's comparison points: the versions live now and before it there, and the
    metrics recorded for each (None: no record of that version's metrics)."""

    target: str
    live_version: str | None = None
    live_metrics: Mapping[str, Any] | None = None
    previous_version: str | None = None
    previous_metrics: Mapping[str, Any] | None = None
    error: str | None = None  # why the live version is unknown (its status failed)

    def of(self, reference: Reference) -> tuple[str | None, Mapping[str, Any] | None]:
        if reference == "live":
            return self.live_version, self.live_metrics
        return self.previous_version, self.previous_metrics


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict (for one target when it compares with ``live``/``previous``)."""

    gate: str
    passed: bool
    value: float | None = None
    threshold: float | None = None
    target: str | None = None
    note: str | None = None

    def describe(self) -> str:
        """``gate: value vs threshold`` and the note, for people."""
        where = f"{self.target}: " if self.target else ""
        numbers = ""
        if self.value is not None and self.threshold is not None:
            numbers = f" (value {self.value:.4g}, threshold {self.threshold:.4g})"
        elif self.value is not None:
            numbers = f" (value {self.value:.4g})"
        note = f": {self.note}" if self.note else ""
        return f"{where}{self.gate}{numbers}{note}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateReport:
    """Every gate's results, and the override (its reason) when gates were overridden."""

    results: tuple[GateResult, ...] = ()
    override: str | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def blocked(self) -> bool:
        """True when a gate failed and nobody overrode the gates."""
        return not self.passed and self.override is None

    @property
    def failures(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.results]


def _number(metrics: Mapping[str, Any] | None, metric: str) -> float | None:
    value = (metrics or {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def evaluate(
    gates: Sequence[Gate],
    metrics: Mapping[str, Any] | None,
    baselines: Sequence[Baseline],
    *,
    missing: str | None = None,
) -> list[GateResult]:
    """Each gate against the new model's ``metrics`` (None: unknown, ``missing`` says
    why) and, for ``live``/``previous``, each target's baseline."""
    results: list[GateResult] = []
    for gate in gates:
        value = _number(metrics, gate.metric)
        if gate.reference == "number":
            results.append(_judge(gate, value, gate.number, None, metrics, missing))
            continue
        for baseline in baselines:
            results.append(_against(gate, value, baseline, metrics, missing))
    return results


def _judge(
    gate: Gate,
    value: float | None,
    threshold: float,
    target: str | None,
    metrics: Mapping[str, Any] | None,
    missing: str | None,
) -> GateResult:
    if value is None:
        why = missing or (
            f"{gate.metric} was not recorded by the evaluation (recorded: "
            f"{', '.join(sorted(metrics or {})) or 'none'})"
        )
        return GateResult(gate.text, False, None, threshold, target, f"{why}; {EVALUATE_HINT}")
    return GateResult(gate.text, gate.holds(value, threshold), value, threshold, target)


def _against(
    gate: Gate,
    value: float | None,
    baseline: Baseline,
    metrics: Mapping[str, Any] | None,
    missing: str | None,
) -> GateResult:
    target = baseline.target
    if baseline.error:
        note = f"cannot tell what {target} serves: {baseline.error}"
        return GateResult(gate.text, False, value, None, target, note)
    version, recorded = baseline.of(gate.reference)
    if version is None:
        note = f"no {gate.reference} version on {target}: nothing to compare with, passed"
        return GateResult(gate.text, True, value, None, target, note)
    base = _number(recorded, gate.metric)
    if base is None:
        where = "no recorded push" if recorded is None else f"no {gate.metric} in the record"
        note = (
            f"{gate.reference} version {version} on {target} has {where} in "
            ".deployer/audit.jsonl: its metrics are unknown"
        )
        return GateResult(gate.text, False, value, None, target, note)
    return _judge(gate, value, gate.threshold(base), target, metrics, missing)
