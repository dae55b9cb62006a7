"""``deployer evaluate --to T --labels feedback.csv``: concept drift from labels that
arrived after the predictions (``Project.evaluate_labels``), rendered as a table per time
window or one JSON document. Imported by ``cli_evaluate``; nothing heavy until run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from deployer import output
from deployer.errors import UsageError
from deployer.output import Format

LabelsOption = Annotated[
    str | None,
    typer.Option(
        help="Ground truth that arrived later (CSV, JSON Lines, Parquet), joined with --to's "
        "captured predictions by request id."
    ),
]
IdColumnOption = Annotated[str, typer.Option(help="--labels: the column holding the request id.")]
LabelColumnOption = Annotated[
    str, typer.Option(help="--labels: the column holding the true label.")
]
WindowOption = Annotated[
    str, typer.Option(help="--labels: the time window of each row of metrics (30m, 1h, 1d).")
]

METRICS = ("rows", "accuracy", "precision_macro", "recall_macro", "f1_macro")


def evaluate_labels(
    to: str | None,
    labels: str,
    data: str | None,
    id_column: str,
    label_column: str,
    window: str,
    file: Path,
    output_format: Format,
) -> None:
    """Run ``Project.evaluate_labels`` and render it."""
    from deployer.api import Project

    if to is None:
        raise UsageError(
            "--labels needs --to: the target whose captured predictions the labels belong to",
            hint="deployer evaluate --to prod --labels feedback.csv",
        )
    if data is not None:
        raise UsageError("--labels and --data: pass one of them (--data measures a holdout set)")
    result = Project.load(file).evaluate_labels(
        to, labels, id_column=id_column, label_column=label_column, window=window
    )
    if output_format == Format.json:
        output.emit_json({"ok": True, **result.to_dict()})
    else:
        render(result)


def _cells(scores: dict[str, Any]) -> list[str]:
    return [str(scores["rows"]), *(f"{scores[k]:.4f}" for k in METRICS[1:])]


def render(result: Any) -> None:
    """The metrics per window and overall, then the join's counts."""
    from rich.table import Table

    output.ok(f"{result.target}: {result.matched} captured predictions labelled by {result.labels}")
    if result.windows:
        table = Table(title=f"per {result.window} window (UTC)", title_justify="left")
        for column in ("window start", *METRICS):
            table.add_column(column, justify="left" if column == "window start" else "right")
        for row in result.windows:
            table.add_row(row["start"], *_cells(row))
        table.add_row("[bold]overall[/]", *_cells(result.overall))
        output.out.print(table)
    counts = (
        ("labels whose request id was never captured", result.unmatched_ids),
        ("labels of a captured request matching none of its rows", result.unmatched_rows),
        ("labels given twice (the last kept)", result.duplicates),
        ("captured predictions without a label", result.unlabelled),
    )
    for what, count in counts:
        if count:
            output.warn(f"{count} {what}")
