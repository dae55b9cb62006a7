"""``--report DIR``: the confusion matrix, ROC and PR curves as PNG (matplotlib, Agg
backend, imported only here) and an ``index.html`` showing them with the metric tables."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer.errors import MissingDependencyError, UsageError

if TYPE_CHECKING:
    from deployer.evaluation.run import EvaluationResult


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError(
            "--report needs matplotlib, which is not installed",
            hint="pip install 'deployer[evaluate]'",
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _confusion(plt: Any, confusion: dict[str, Any], path: Path) -> Path:
    labels, matrix = confusion["labels"], confusion["matrix"]
    size = max(4.0, 0.6 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("confusion matrix")
    top = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            color = "white" if top and count > top / 2 else "black"
            axes.text(j, i, str(count), ha="center", va="center", color=color)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _curves(plt: Any, curves: dict[str, dict[str, list[float]]], kind: str, path: Path) -> Path:
    """ROC (``kind`` roc: fpr → tpr) or PR (recall → precision) curves, one line per class."""
    figure, axes = plt.subplots(figsize=(5, 5))
    x, y = ("fpr", "tpr") if kind == "roc" else ("recall", "precision")
    for label, points in curves.items():
        axes.plot(points[x], points[y], label=f"class {label}")
    if kind == "roc":
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axes.set_xlabel("false positive rate" if kind == "roc" else "recall")
    axes.set_ylabel("true positive rate" if kind == "roc" else "precision")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_title("ROC curve" if kind == "roc" else "precision/recall curve")
    axes.legend(loc="lower right" if kind == "roc" else "lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        return f"<td>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(f"<tr>{''.join(cell(v) for v in row)}</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(result: EvaluationResult, images: list[Path]) -> str:
    data = result.data
    parts = [
        f"<h1>{html.escape(result.project)}: {html.escape(result.task)}</h1>",
        f"<p>{data['rows']} rows of {html.escape(str(data['source']))} (sha256 "
        f"{html.escape(data['sha256'][:12])}, label {html.escape(data['label'])}), "
        f"through {html.escape(result.through)}, {html.escape(result.evaluated_at)}; "
        f"model sha256 {html.escape((result.model_sha256 or '')[:12])}</p>",
        "<h2>Metrics</h2>",
        _table(["metric", "value"], [[k, v] for k, v in result.metrics.items()]),
    ]
    if result.skipped:
        parts.append(_table(["skipped", "why"], [[k, v] for k, v in result.skipped.items()]))
    if result.per_class:
        rows = [
            [label, m["precision"], m["recall"], m["f1"], m["support"]]
            for label, m in result.per_class.items()
        ]
        parts += [
            "<h2>Per class</h2>",
            _table(["class", "precision", "recall", "f1", "support"], rows),
        ]
    if result.trade_off:
        rows = [[p["threshold"], p["precision"], p["recall"], p["f1"]] for p in result.trade_off]
        parts += [
            "<h2>Precision/recall trade-off (positive class "
            f"{html.escape(str(result.positive_label))})</h2>",
            _table(["threshold", "precision", "recall", "f1"], rows),
        ]
    if result.threshold:
        t = result.threshold
        parts.append(
            f"<p>chosen threshold {t['value']:.4f} ({html.escape(t['rule'])}): precision "
            f"{t['precision']:.4f}, recall {t['recall']:.4f}, f1 {t['f1']:.4f}</p>"
        )
    parts += [
        f'<p><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}"></p>' for p in images
    ]
    style = (
        "body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px}"
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>evaluation of {html.escape(result.project)}</title><style>{style}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )


def write_report(result: EvaluationResult, folder: Path) -> Path:
    """The charts that apply and ``index.html`` in ``folder`` (created); the HTML's path."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--report {folder}: cannot create the folder: {exc.strerror}") from None
    images: list[Path] = []
    if result.confusion_matrix or result.charts.get("roc"):
        plt = _pyplot()
        if result.confusion_matrix:
            images.append(_confusion(plt, result.confusion_matrix, folder / "confusion_matrix.png"))
        if result.charts.get("roc"):
            images.append(_curves(plt, result.charts["roc"], "roc", folder / "roc_curve.png"))
            images.append(_curves(plt, result.charts["pr"], "pr", folder / "pr_curve.png"))
    index = folder / "index.html"
    index.write_text(_html(result, images), encoding="utf-8")
    return index
