"""``deployer alerts render`` and ``deployer dashboard render``: parse, render, write.
Registered on the main app by ``register``; imports nothing heavy until run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deployer import output
from deployer.output import Format, handles_errors

alerts_app = typer.Typer(
    name="alerts",
    help="Alert rules for the deployed model: Prometheus, CloudWatch, Cloud Monitoring, Azure.",
    no_args_is_help=True,
    add_completion=False,
)
dashboard_app = typer.Typer(
    name="dashboard",
    help="A Grafana dashboard for the image's and the router's metrics.",
    no_args_is_help=True,
    add_completion=False,
)

FileOption = Annotated[
    Path, typer.Option("--file", "-f", envvar="DEPLOYER_FILE", help="Project file.")
]
OutOption = Annotated[Path | None, typer.Option("--out", help="Write here (default: stdout).")]
OutputOption = Annotated[
    Format, typer.Option("--output", "-o", help="text for people, json for CI.")
]


TitleOption = Annotated[str | None, typer.Option(help="Default: deployer: PROJECT.")]
ProjectFileOption = Annotated[
    Path | None,
    typer.Option("--file", "-f", envvar="DEPLOYER_FILE", help="Project file (optional)."),
]


def _title(title: str | None, file: Path | None) -> str:
    """The dashboard's title: ``title``, else ``deployer: NAME`` from deployer.yaml when
    there is one, else ``deployer``."""
    if title is not None:
        return title
    path = file or Path("deployer.yaml")
    if not path.exists():
        return "deployer"
    from deployer.api import Project

    return f"deployer: {Project.load(path).name}"


def parse_window(value: str | None) -> int | None:
    """``--window``: seconds from ``90s``, ``5m``, ``1h`` (or a bare number of seconds)."""
    from deployer.errors import UsageError

    if value is None:
        return None
    text = value.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], units[text[-1]]) if text[-1:] in units else (text, 1)
    if not number.isdigit() or int(number) < 1:
        raise UsageError(f"--window: {value!r} is not a duration", hint="use e.g. 30s, 5m or 1h")
    return int(number) * unit


@alerts_app.command("render")
@handles_errors
def render_alerts(
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-F",
            help="prometheus, prometheusrule, cloudwatch, gcp or azure "
            "(default: the --to target's platform).",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", "-t", help="The target the alerts watch (its endpoint's names)."),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(help="Override monitoring.alerts.window_minutes (30s, 5m, 1h)."),
    ] = None,
    out: OutOption = None,
    file: FileOption = Path("deployer.yaml"),
    output_format: OutputOption = Format.text,
) -> None:
    """Write alert rules for a high error rate, p99 latency, the model not ready and drift,
    with deployer.yaml's monitoring.alerts thresholds. A rule the platform cannot express
    is listed as skipped, with why.

    Example: deployer alerts render --to aws --out alarms.json
    """
    from deployer.alerting.render import render
    from deployer.alerting.rules import alert_rules
    from deployer.alerting.targets import format_and_scope
    from deployer.api import Project
    from deployer.errors import UsageError

    project = Project.load(file)
    scope: dict[str, str] = {}
    if to is not None:
        provider = project.providers([to])[to]
        found, scope = format_and_scope(provider, project.config.targets[to].provider)
        fmt = fmt or found
    if fmt is None:
        raise UsageError("--format is needed", hint="pass --format or --to TARGET")
    rules = alert_rules(project.config.monitoring, window_seconds=parse_window(window))
    rendered = render(rules, fmt, scope)
    _emit(rendered.text, rendered.to_dict(), out, output_format, fmt)
    if output_format != Format.json:
        for name, reason in rendered.skipped:
            output.warn(f"skipped {name}: {reason}")
        for note in rendered.notes:
            output.err.print(f"[dim]note:[/] {note}")


@dashboard_app.command("render")
@handles_errors
def render_dashboard(
    out: OutOption = None,
    title: TitleOption = None,
    file: ProjectFileOption = None,
    output_format: OutputOption = Format.text,
) -> None:
    """Write a Grafana dashboard (JSON, importable as is) over the image's and the router's
    metrics: requests, errors, latency percentiles, batch sizes, drift per feature, the
    router's per-backend traffic and ejections.

    Example: deployer dashboard render --out dashboard.json
    """
    from deployer.alerting.dashboard import dashboard
    from deployer.alerting.document import as_json

    document = dashboard(_title(title, file))
    _emit(as_json(document), {"document": document}, out, output_format, "grafana")


@dashboard_app.command("preview")
@handles_errors
def preview_dashboard(
    prometheus: Annotated[
        str, typer.Option(help="The Prometheus the panels read (http://127.0.0.1:9090).")
    ],
    out: Annotated[Path, typer.Option("--out", help="The folder for index.html.")] = Path(
        "dashboard-preview"
    ),
    minutes: Annotated[float, typer.Option(help="The time range shown.", min=1)] = 15.0,
    step: Annotated[float, typer.Option(help="Seconds between points.", min=1)] = 5.0,
    png: Annotated[
        bool, typer.Option("--png", help="Also screenshot it (headless chromium).")
    ] = False,
    title: TitleOption = None,
    file: ProjectFileOption = None,
    output_format: OutputOption = Format.text,
) -> None:
    """Draw the dashboard's panels from a real Prometheus into an HTML page of SVG charts
    (and a PNG with --png): what the dashboard shows, without a Grafana.

    Example: deployer dashboard preview --prometheus http://127.0.0.1:9090 --png
    """
    from deployer.alerting.dashboard import dashboard
    from deployer.alerting.preview import preview

    document = dashboard(_title(title, file))
    written = preview(document, prometheus, out, minutes=minutes, step=step, png=png)
    if output_format == Format.json:
        output.emit_json({"ok": True, "files": [str(p) for p in written]})
    else:
        for path in written:
            output.ok(f"wrote {path}")


def _emit(text: str, document: dict, out: Path | None, fmt: Format, kind: str) -> None:
    if out is not None:
        out.write_text(text, encoding="utf-8")
    if fmt == Format.json:
        payload = {**document, "text": None, "file": str(out)} if out is not None else document
        output.emit_json({"ok": True, **payload})
    elif out is None:
        output.out.file.write(text)
    else:
        output.ok(f"wrote {out} ({kind})")


def register(app: typer.Typer) -> None:
    """Add ``alerts`` and ``dashboard`` to the main app."""
    app.add_typer(alerts_app)
    app.add_typer(dashboard_app)
