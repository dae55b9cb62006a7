"""``deployer drift --report DIR``: per drifting feature, a PNG of the baseline's and the
live shares on the baseline's bins (matplotlib, Agg backend, imported only here), and an
``index.html`` with the statistics table and the pictures."""

from __future__ import annotations

import html
import itertools
import re
from pathlib import Path
from typing import Any

import numpy as np

from deployer.evaluation.report import _pyplot
from deployer.monitoring.drift import DriftReport, FeatureDrift
from deployer.serving.baseline_bins import Distribution, read_baseline

STATISTICS = ("psi", "ks", "js", "chi2_p")


def bin_labels(expected: Distribution) -> list[str]:
    """A label per bin: ``< e1``, ``[e1, e2)``, ..., ``>= ek``; or the categories, ``other``."""
    if expected.kind == "categorical":
        return [*expected.categories, "other"]
    edges = [f"{e:.4g}" for e in expected.edges]
    if not edges:
        return ["all"]
    middle = [f"[{a}, {b})" for a, b in itertools.pairwise(edges)]
    return [f"< {edges[0]}", *middle, f">= {edges[-1]}"]


def histogram(plt: Any, feature: FeatureDrift, expected: Distribution, path: Path) -> Path:
    """The baseline's shares and the live shares side by side, one pair of bars per bin."""
    counts, _ = expected.counts(feature.values)
    total = counts.sum()
    live = counts / total if total else np.zeros(len(counts))
    labels = bin_labels(expected)
    x = np.arange(len(labels))
    figure, axes = plt.subplots(figsize=(max(5.0, 0.5 * len(labels) + 2), 4))
    axes.bar(x - 0.2, expected.fractions, width=0.4, label="baseline")
    axes.bar(x + 0.2, live, width=0.4, label=f"live ({int(total)} values)")
    axes.set_xticks(x, labels, rotation=45, ha="right")
    axes.set_ylabel("share")
    shown = ", ".join(
        f"{k} {v:.3g}" for k, v in feature.statistics.to_dict().items() if v is not None
    )
    axes.set_title(f"{feature.name}: {shown}", fontsize=9)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_report(result: DriftReport, folder: Path) -> Path:
    """The pictures and ``index.html`` in ``folder`` (created); the index's path."""
    folder.mkdir(parents=True, exist_ok=True)
    features, prediction = read_baseline(result.baseline)
    distributions = {**features}
    if prediction is not None:
        from deployer.monitoring.drift import PREDICTION

        distributions[PREDICTION] = prediction
    pictures: dict[str, str] = {}
    drifting = [f for f in result.features if f.verdict == "drift"]
    if drifting:
        plt = _pyplot()
        for feature in drifting:
            name = f"drift-{_slug(feature.name)}.png"
            histogram(plt, feature, distributions[feature.name], folder / name)
            pictures[feature.name] = name
    index = folder / "index.html"
    index.write_text(_html(result, pictures), encoding="utf-8")
    return index


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "feature"


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _html(result: DriftReport, pictures: dict[str, str]) -> str:
    rows = []
    for f in result.features:
        found = f.statistics.to_dict()
        cells = "".join(f"<td>{_cell(found[k])}</td>" for k in STATISTICS)
        rows.append(
            f"<tr><td>{html.escape(f.name)}</td><td>{f.kind}</td><td>{f.rows}</td>{cells}"
            f"<td>{html.escape(f.verdict)}</td></tr>"
        )
    images = "".join(
        f'<h2>{html.escape(name)}</h2><img src="{html.escape(file)}" alt="{html.escape(name)}">'
        for name, file in pictures.items()
    )
    limits = ", ".join(f"{k} {v:g}" for k, v in result.thresholds.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>drift on {html.escape(result.target)}</title></head><body>"
        f"<h1>drift on {html.escape(result.target)}</h1>"
        f"<p>{result.records} records, {result.rows} rows from {result.first} to "
        f"{result.last}; thresholds: {html.escape(limits)}</p>"
        "<table border='1'><tr><th>feature</th><th>kind</th><th>rows</th>"
        + "".join(f"<th>{k}</th>" for k in STATISTICS)
        + "<th>verdict</th></tr>"
        + "".join(rows)
        + f"</table>{images}</body></html>\n"
    )
