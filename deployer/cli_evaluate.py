"""``deployer evaluate``: parse, call ``Project.evaluate``, render (rich tables or one JSON
document). Registered on the main app by ``register``; imports nothing heavy until run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from deployer import output
from deployer.cli_labels import (
    IdColumnOption,
    LabelColumnOption,
    LabelsOption,
    WindowOption,
)
from deployer.errors import UsageError
from deployer.output import Format, handles_errors


def evaluate(
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            help="Labelled data: CSV, JSON Lines or Parquet; a path or s3:// gs:// az://.",
        ),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", "-l", help="The column holding the true label.")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", "-t", help="Evaluate through this running target (default: in process)."
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Write confusion matrix, ROC and PR curves (PNG) and index.html here."),
    ] = None,
    choose_threshold: Annotated[
        str | None,
        typer.Option(
            help="Binary classifiers: pick the decision threshold by precision>=X, recall>=X "
            "or f1=max, and record it."
        ),
    ] = None,
    positive: Annotated[
        str | None, typer.Option(help="The positive class (default: the model's second class).")
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="classification or regression (default: detected).")
    ] = None,
    data_format: Annotated[
        str | None, typer.Option("--format", help="csv, jsonl or parquet (default: the suffix).")
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help="Rows per batch (default: 65536 in process, 1000 through a target)."),
    ] = None,
    file: Annotated[
        Path, typer.Option("--file", "-f", envvar="DEPLOYER_FILE", help="Project file.")
    ] = Path("deployer.yaml"),
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Do not write the result into deployer.lock.")
    ] = False,
    output_format: Annotated[
        Format, typer.Option("--output", "-o", help="text for people, json for CI.")
    ] = Format.text,
    labels: LabelsOption = None,
    id_column: IdColumnOption = "request_id",
    label_column: LabelColumnOption = "label",
    window: WindowOption = "1h",
) -> None:
    """Measure the project's model on labelled data and record the result in deployer.lock.

    Classification: accuracy, precision/recall/F1 (per class, macro, weighted), ROC-AUC,
    PR-AUC, log loss, the confusion matrix and the precision/recall trade-off; regression:
    MAE, MSE, RMSE, R². Every number comes from scikit-learn's sklearn.metrics.

    With --to and --labels (ground truth that arrived later): the target's captured
    predictions joined with the labels by request id, precision/recall/F1 per --window.

    Example: deployer evaluate --data holdout.csv --label species --report report/
    """
    from deployer.api import Project

    if labels is not None:
        from deployer.cli_labels import evaluate_labels

        evaluate_labels(to, labels, data, id_column, label_column, window, file, output_format)
        return
    if data is None or label is None:
        raise UsageError(
            "deployer evaluate needs --data and --label (or --to and --labels)",
            hint="deployer evaluate --data holdout.csv --label y",
        )
    project = Project.load(file)
    quiet = output_format == Format.json
    with _progress(enabled=not quiet) as progress:
        result = project.evaluate(
            data,
            label,
            to=to,
            task=task,
            positive=positive,
            choose_threshold=choose_threshold,
            data_format=data_format,
            batch_size=batch_size,
            report=report,
            record=not no_record,
            progress=progress,
        )
    if quiet:
        output.emit_json({"ok": True, **result.to_dict()})
    else:
        render(result)


class _progress:
    """A rich progress bar on stderr when it is a terminal (and not -o json); else nothing."""

    def __init__(self, enabled: bool) -> None:
        self.bar: Any = None
        self.task: Any = None
        if enabled and output.err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self.bar = Progress(
                "rows",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=output.err,
                transient=True,
            )

    def __enter__(self) -> Any:
        if self.bar is None:
            return None
        self.bar.__enter__()
        self.task = self.bar.add_task("rows", total=None)
        return self.update

    def update(self, done: int, total: int | None) -> None:
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def render(result: Any) -> None:
    """The metrics, per-class table, confusion matrix and trade-off as rich tables."""
    from rich.table import Table

    data = result.data
    output.ok(
        f"{result.project}: {result.task} on {data['rows']} rows of {data['source']} "
        f"through {result.through} in {result.seconds:.1f}s"
    )
    table = Table(title="metrics", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:.4f}")
    for name, why in result.skipped.items():
        table.add_row(name, f"[dim]skipped: {why}[/]")
    output.out.print(table)
    if result.per_class:
        table = Table(title="per class", title_justify="left")
        for column in ("class", "precision", "recall", "f1", "support"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for name, m in result.per_class.items():
            table.add_row(
                name,
                f"{m['precision']:.4f}",
                f"{m['recall']:.4f}",
                f"{m['f1']:.4f}",
                str(m["support"]),
            )
        output.out.print(table)
    if result.confusion_matrix:
        labels = result.confusion_matrix["labels"]
        table = Table(
            title="confusion matrix (rows: true, columns: predicted)", title_justify="left"
        )
        table.add_column("")
        for name in labels:
            table.add_column(name, justify="right")
        for name, row in zip(labels, result.confusion_matrix["matrix"], strict=True):
            table.add_row(name, *(str(v) for v in row))
        output.out.print(table)
    _render_trade_off(result)


def _render_trade_off(result: Any) -> None:
    from rich.table import Table

    if result.trade_off:
        table = Table(
            title=f"precision/recall trade-off (positive class {result.positive_label}; "
            "full curve with -o json)",
            title_justify="left",
        )
        for column in ("threshold", "precision", "recall", "f1"):
            table.add_column(column, justify="right")
        for p in result.trade_off:
            table.add_row(*(f"{p[k]:.4f}" for k in ("threshold", "precision", "recall", "f1")))
        output.out.print(table)
    if result.threshold:
        t = result.threshold
        output.ok(
            f"threshold {t['value']:.4f} for class {t['positive_label']} ({t['rule']}): "
            f"precision {t['precision']:.4f}, recall {t['recall']:.4f}, f1 {t['f1']:.4f}"
        )
    if result.report:
        output.ok(f"wrote {result.report}")
    if result.recorded:
        output.ok(f"recorded in {result.recorded}")


def register(app: typer.Typer) -> None:
    """Add ``deployer evaluate`` to ``app``."""
    app.command("evaluate")(handles_errors(evaluate))
