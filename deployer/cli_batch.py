"""``deployer batch``: score files with the image ``push`` would deploy (or in process),
and ``deployer batch status|logs|cancel JOB``. Parse, call ``Project.batch``, render;
registered by ``register``; imports nothing heavy until run.

Exit codes: 0 every row scored, 1 some rows (named) or the job failed, 2 bad input,
3 a missing dependency.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from deployer import output
from deployer.output import Format, handles_errors

FileOption = Annotated[
    Path, typer.Option("--file", "-f", envvar="DEPLOYER_FILE", help="Project file.")
]
OutputOption = Annotated[
    Format, typer.Option("--output-format", "-o", help="text for people, json for CI.")
]
MAX_SHOWN = 20

batch_app = typer.Typer(
    name="batch",
    invoke_without_command=True,
    add_completion=False,
)


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [n.strip() for n in value.split(",") if n.strip()]


@batch_app.callback()
@handles_errors
def run(
    ctx: typer.Context,
    to: Annotated[
        str | None, typer.Option("--to", "-t", help="The target whose image scores the rows.")
    ] = None,
    input: Annotated[
        str | None,
        typer.Option(
            "--input", "-i", help="A CSV / JSON Lines / Parquet file, or a folder of them."
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--output",
            help="Where the predictions go: a file, or a folder (one output per input file).",
        ),
    ] = None,
    data_format: Annotated[
        str | None,
        typer.Option("--format", help="csv, jsonl or parquet (default: batch.format, the suffix)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the job to finish.")
    ] = True,
    keep: Annotated[
        str | None,
        typer.Option(help="Input columns copied next to the predictions, e.g. id,ts."),
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="A column dropped before predicting (the true label).")
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(help="The feature columns, in the model's order (default: the others)."),
    ] = None,
    in_process: Annotated[
        bool,
        typer.Option("--in-process", help="Load the model in this process instead of the image."),
    ] = False,
    endpoint: Annotated[
        bool,
        typer.Option(
            "--endpoint",
            help="Score through the target's running deployment (push it first): rows read "
            "here, predicted there, no job start-up.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the input and the target; score nothing.")
    ] = False,
    file: FileOption = Path("deployer.yaml"),
    output_format: OutputOption = Format.text,
) -> None:
    """Score every row of --input into --output, in input order, resumably.

    Rows are shaped as online requests are: the feature columns by name (--columns, else every column but --label and --keep), the label dropped, the --keep columns copied next to `prediction`. Interrupted (Ctrl-C), the same command resumes: no row is scored twice, none is lost. Exit 0: every row scored; 1: some rows failed (named); 2: bad input; 3: a missing dependency.

    Examples:

      deployer batch --to local --input rows.csv --output out.csv --keep id

      deployer batch --to local --in-process --input folder/ --output out/

      deployer batch --to local --endpoint --input rows.csv --output out.csv

      deployer batch --to aws --input s3://b/in/ --output s3://b/out/ --no-wait

      deployer batch status JOB   (also: logs JOB, cancel JOB)
    """  # noqa: E501
    if ctx.invoked_subcommand is not None:
        return
    from deployer.errors import UsageError

    if input is None or out is None:
        raise UsageError("batch needs --input and --output (see deployer batch --help)")
    from deployer.api import Project

    project = Project.load(file)
    if dry_run:
        _dry_run(
            project,
            to,
            input,
            out,
            data_format,
            (keep, label, columns),
            (in_process, endpoint),
            output_format,
        )
        return
    quiet = output_format == Format.json
    started = time.monotonic()
    with _Bar(enabled=not quiet) as bar:
        try:
            handle = project.batch(
                to,
                input,
                out,
                format=data_format,
                keep=_names(keep),
                label=label,
                columns=_names(columns) or (),
                in_process=in_process,
                endpoint=endpoint,
                wait=False,
                progress=None if quiet else output.progress_line,
                on_rows=bar.rows,
            )
            job = handle.job
            if wait and not job.finished:
                job = handle.wait(on_update=lambda j: bar.rows(j.rows_done or 0))
        except KeyboardInterrupt:
            output.error("interrupted", "run the same command again: it resumes where it stopped")
            raise typer.Exit(130) from None
    _finish(job, time.monotonic() - started, output_format)


def _dry_run(
    project: Any,
    to: str | None,
    input: str,
    out: str,
    data_format: str | None,
    shaping: tuple[str | None, str | None, str | None],
    where: tuple[bool, bool],
    output_format: Format,
) -> None:
    """The spec the job would get, the input's files and the target checked (with
    --endpoint: that it serves this project's model)."""
    from dataclasses import asdict

    from deployer.batch.spec import build_spec
    from deployer.batch.start import batch_provider, target_provider, through_of
    from deployer.errors import UsageError
    from deployer.serving.batch_files import InputError, input_files

    keep, label, columns = shaping
    in_process, endpoint = where
    through = through_of(to, in_process, endpoint)
    spec = build_spec(
        project.config.batch,
        input,
        out,
        format=data_format,
        keep=_names(keep),
        label=label,
        columns=_names(columns) or (),
    )
    if "://" not in input:
        try:
            files = input_files(input)
        except InputError as exc:
            raise UsageError(str(exc)) from None
    else:
        files = [input]
    if endpoint and to is not None:
        from deployer.batch.endpoint import serving_this_model

        serving_this_model(target_provider(project, to), to, project.artifact_sha256())
    elif not in_process and to is not None:
        batch_provider(project, to)
    if output_format == Format.json:
        output.emit_json(
            {"ok": True, "dry_run": True, "through": through, "files": files, "spec": asdict(spec)}
        )
        return
    output.ok(f"would score {len(files)} file(s) as {spec.format} through {through} -> {out}")


def _finish(job: Any, seconds: float, output_format: Format) -> None:
    from dataclasses import asdict

    if output_format == Format.json:
        output.emit_json({"ok": job.complete, "seconds": round(seconds, 3), **asdict(job)})
    else:
        _render(job, seconds)
    if job.finished and not job.complete:
        raise typer.Exit(1)


def _render(job: Any, seconds: float) -> None:
    if not job.finished:
        output.ok(
            f"batch job {job.job_id} is {job.state}; follow it: deployer batch status {job.job_id}"
        )
        return
    if job.state != "succeeded":
        output.error(f"batch job {job.job_id} {job.state}: {job.reason or 'no reason given'}")
    else:
        output.ok(
            f"{job.job_id}: {job.rows_done} row(s) scored, {job.rows_failed or 0} failed, "
            f"-> {job.output_uri} ({seconds:.1f}s)"
        )
    for line in job.failures[:MAX_SHOWN]:
        output.error(line)
    if len(job.failures) > MAX_SHOWN:
        output.error(
            f"... and {len(job.failures) - MAX_SHOWN} more (deployer batch status -o json)"
        )


@batch_app.command("status")
@handles_errors
def status(
    job_id: Annotated[str, typer.Argument(help="The job id batch printed.")],
    file: FileOption = Path("deployer.yaml"),
    output_format: OutputOption = Format.text,
) -> None:
    """The job's state, rows scored and failed, and the failures."""
    from deployer.api import Project

    job = Project.load(file).batch_job(job_id).status
    _finish(job, 0.0, output_format)


@batch_app.command("logs")
@handles_errors
def logs(
    job_id: Annotated[str, typer.Argument(help="The job id batch printed.")],
    file: FileOption = Path("deployer.yaml"),
) -> None:
    """The job's log lines (the target's own)."""
    from deployer.api import Project

    for line in Project.load(file).batch_job(job_id).logs():
        output.out.print(line, markup=False, highlight=False)


@batch_app.command("cancel")
@handles_errors
def cancel(
    job_id: Annotated[str, typer.Argument(help="The job id batch printed.")],
    file: FileOption = Path("deployer.yaml"),
    output_format: OutputOption = Format.text,
) -> None:
    """Stop a running job (the rows already scored stay in the output's parts)."""
    from dataclasses import asdict

    from deployer.api import Project

    job = Project.load(file).batch_job(job_id).cancel()
    if output_format == Format.json:
        output.emit_json({"ok": True, **asdict(job)})
    else:
        output.ok(f"batch job {job.job_id}: {job.state}")


class _Bar:
    """A rich rows counter on stderr when it is a terminal (and not -o json)."""

    def __init__(self, enabled: bool) -> None:
        self.bar: Any = None
        self.task: Any = None
        if enabled and output.err.is_terminal:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.completed:,.0f} rows"),
                TimeElapsedColumn(),
                console=output.err,
                transient=True,
            )

    def __enter__(self) -> _Bar:
        if self.bar is not None:
            self.bar.__enter__()
            self.task = self.bar.add_task("rows", total=None)
        return self

    def rows(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def register(app: typer.Typer) -> None:
    """Add ``deployer batch`` (and status, logs, cancel) to ``app``."""
    app.add_typer(batch_app)
