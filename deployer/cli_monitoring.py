"""``deployer baseline`` and ``deployer drift``: parse, call the API, render (rich tables
or one JSON document). Registered on the main app by ``register``; imports nothing heavy
(no pyarrow, scipy or matplotlib) until run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from deployer import output
from deployer.errors import EXIT_FAILED
from deployer.output import Format, handles_errors

FileOption = Annotated[
    Path, typer.Option("--file", "-f", envvar="DEPLOYER_FILE", help="Project file.")
]
OutputOption = Annotated[
    Format, typer.Option("--output", "-o", help="text for people, json for CI.")
]


def baseline(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            "-d",
            help="Training data: CSV, JSON Lines or Parquet; a path or s3:// gs:// az://.",
        ),
    ],
    label: Annotated[
        str | None,
        typer.Option("--label", "-l", help="The label column (not a feature; left out)."),
    ] = None,
    data_format: Annotated[
        str | None, typer.Option("--format", help="csv, jsonl or parquet (default: the suffix).")
    ] = None,
    file: FileOption = Path("deployer.yaml"),
    output_format: OutputOption = Format.text,
) -> None:
    """Record the training data's distributions in deployer.lock (what drift compares).

    `deployer drift` compares a target's live traffic with this baseline.

    Numbers: decile bins, missing share and percentiles; text, booleans and integers with
    at most 10 distinct values: the 50 most frequent categories and "other". Also the
    model's predictions on the data (class labels as categories, values as numbers).

    Example: deployer baseline --data train.csv --label species
    """
    from deployer.api import Project
    from deployer.cli_evaluate import _progress

    project = Project.load(file)
    with _progress(enabled=output_format != Format.json) as progress:
        entry = project.baseline(data, label=label, data_format=data_format, progress=progress)
    if output_format == Format.json:
        output.emit_json({"ok": True, "baseline": entry})
        return
    _render_baseline(entry)
    output.ok(f"recorded the baseline in {project.root / 'deployer.lock'}")


def _render_baseline(entry: dict[str, Any]) -> None:
    from rich.table import Table

    described = entry["data"]
    output.ok(f"baseline of {described['rows']} rows of {described['source']}")
    table = Table(title="features", title_justify="left")
    for column in ("feature", "kind", "bins", "missing", "range / top categories"):
        table.add_column(column)
    rows = list(entry["features"].items())
    if entry.get("prediction"):
        rows.append(("(prediction)", entry["prediction"]))
    for name, dist in rows:
        if dist["kind"] == "numeric":
            q = dist.get("quantiles") or []
            shown = f"{q[0]:.4g} .. {q[-1]:.4g}" if q else "no values"
        else:
            shown = ", ".join(dist["categories"][:5]) + (
                ", ..." if len(dist["categories"]) > 5 else ""
            )
        table.add_row(
            name, dist["kind"], str(len(dist["fractions"])), f"{dist['missing']:.1%}", shown
        )
    output.out.print(table)


def drift(
    to: Annotated[str, typer.Option("--to", "-t", help="The target whose capture to read.")],
    since: Annotated[
        str | None,
        typer.Option(help="Only records since: a duration (24h, 30m, 7d) or an ISO 8601 time."),
    ] = "24h",
    report: Annotated[
        Path | None,
        typer.Option(help="Write a histogram (PNG) per drifting feature and index.html here."),
    ] = None,
    file: FileOption = Path("deployer.yaml"),
    output_format: OutputOption = Format.text,
) -> None:
    """Compare a target's captured traffic with the training baseline in deployer.lock.

    Per feature and for the predictions: PSI, Kolmogorov-Smirnov, Jensen-Shannon distance
    and the chi-squared p-value, with a verdict against monitoring.drift in deployer.yaml.
    Exit 1 when any feature drifts, 0 when none does, 2 for bad input.

    Example: deployer drift --to prod --since 24h --report drift/
    """
    from deployer.api import Project

    result = Project.load(file).drift(to, since=since, report=report)
    if output_format == Format.json:
        output.emit_json({"ok": True, **result.to_dict()})
    else:
        _render_drift(result)
    if result.drifted:
        raise typer.Exit(EXIT_FAILED)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _render_drift(result: Any) -> None:
    from rich.table import Table

    output.ok(
        f"{result.target}: {result.records} captured records, {result.rows} rows"
        + (f" from {result.first} to {result.last}" if result.first else "")
    )
    limits = result.thresholds
    table = Table(
        title=f"drift (psi > {limits['psi']:g}, ks > {limits['ks']:g}, js > {limits['js']:g}, "
        f"chi2 p < {limits['chi2_p']:g}; at least {limits['min_rows']:g} rows)",
        title_justify="left",
    )
    for column in ("feature", "rows", "missing", "psi", "ks", "js", "chi2 p", "verdict"):
        table.add_column(column, justify="left" if column in ("feature", "verdict") else "right")
    for f in result.features:
        found = f.statistics
        style = {"drift": "bold red", "ok": "green"}.get(f.verdict, "dim")
        verdict = f.verdict + (f" ({', '.join(f.over)})" if f.over else "")
        table.add_row(
            f.name,
            str(f.rows),
            f"{f.missing:.1%}",
            _number(found.psi),
            _number(found.ks),
            _number(found.js),
            _number(found.chi2_p),
            f"[{style}]{verdict}[/]",
        )
    output.out.print(table)
    if result.report:
        output.ok(f"wrote {result.report}")
    if result.drifted:
        output.warn(f"drift in {', '.join(result.drifted)}")
    else:
        output.ok("no drift over the thresholds")


def register(app: typer.Typer) -> None:
    """Add ``deployer baseline`` and ``deployer drift`` to ``app``."""
    app.command("baseline")(handles_errors(baseline))
    app.command("drift")(handles_errors(drift))
