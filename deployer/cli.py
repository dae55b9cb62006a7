"""The ``deployer`` command line: parse, call the API, render. No logic lives only here.

Exit codes: 0 ok, 1 an operation failed, 2 bad input (config, arguments, model file),
3 a required tool or package is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from deployer import cli_release, output
from deployer._version import __version__
from deployer.cli_alerts import register as register_alerts
from deployer.cli_batch import register as register_batch
from deployer.cli_evaluate import register as register_evaluate
from deployer.cli_monitoring import register as register_monitoring
from deployer.cli_release import OverrideGatesOption, ReasonOption, split_targets
from deployer.commands import CommandGroup
from deployer.errors import EXIT_BAD_INPUT, EXIT_FAILED, UsageError
from deployer.output import Format, handles_errors

app = typer.Typer(
    name="deployer",
    cls=CommandGroup,  # plus plugins' commands (deployer router), found when asked for
    help=(
        "Package one trained model into one container image and deploy it to SageMaker, "
        "Vertex AI, Azure ML, Kubernetes or this machine's Docker.\n\n"
        "Start with [bold]deployer init --model model.joblib[/], then "
        "[bold]deployer serve[/] to try it locally."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

FileOption = Annotated[
    Path,
    typer.Option("--file", "-f", envvar="DEPLOYER_FILE", help="Project file.", show_default=True),
]
OutputOption = Annotated[
    Format, typer.Option("--output", "-o", help="text for people, json for CI.")
]

ToOption = Annotated[
    str,
    typer.Option("--to", "-t", help="Target names from deployer.yaml, comma-separated (aws,gcp)."),
]
F = TypeVar("F", bound=Callable[..., Any])


@app.command()
@handles_errors
def init(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            "-m",
            help="The trained model file, an MLflow model folder, or models:/NAME/VERSION.",
        ),
    ],
    file: FileOption = Path("deployer.yaml"),
    name: Annotated[
        str | None, typer.Option(help="Project name (default: from the model).")
    ] = None,
    flavor: Annotated[
        str | None,
        typer.Option(
            help="sklearn, onnx, xgboost, lightgbm, catboost, mlflow or python (default: detected)."
        ),
    ] = None,
    predictor: Annotated[
        str | None, typer.Option(help="python flavour: the predictor class, 'module:Class'.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing project file.")] = False,
    data: Annotated[
        str | None, typer.Option("--data", help="Training data: record its drift baseline too.")
    ] = None,
    label: Annotated[str | None, typer.Option(help="--data: the label column.")] = None,
) -> None:
    """Write a commented deployer.yaml (and deployer.lock) for a model file.

    The flavour is detected from the file; the model is loaded once to check it works
    and to record its sha256 and signature in deployer.lock.
    """
    from deployer.api import Project

    project = Project.init(model, file, name=name, flavor=flavor, predictor=predictor, force=force)
    output.ok(f"wrote {file} (project {project.name}, flavour {project.flavor}) and deployer.lock")
    from deployer.scaffold import init_baseline

    output.err.print(init_baseline(project.baseline, data, label))
    output.err.print("next: [bold]deployer validate[/] then [bold]deployer serve[/]")


@app.command()
@handles_errors
def validate(
    file: FileOption = Path("deployer.yaml"),
    load: Annotated[
        bool, typer.Option("--load/--no-load", help="Also load the model and derive its signature.")
    ] = True,
    output_format: OutputOption = Format.text,
) -> None:
    """Check a project file (and that its model loads). Exit 0 when valid, 2 when not."""
    from deployer.api import Project

    report = Project.load(file).validate(load=load)
    if output_format == Format.json:
        output.emit_json({"ok": True, **report.to_dict()})
        return
    output.ok(f"{report.file}: project {report.project} is valid")
    output.out.print(f"  flavour  {report.flavor}")
    if report.model_path:
        output.out.print(f"  model    {report.model_path}")
        output.out.print(f"  sha256   {report.model_sha256}")
    if report.signature:
        for tensor in report.signature["inputs"]:
            output.out.print(f"  input    {tensor['name']} {tensor['datatype']} {tensor['shape']}")
        for tensor in report.signature["outputs"]:
            output.out.print(f"  output   {tensor['name']} {tensor['datatype']} {tensor['shape']}")
    for warning in report.warnings:
        output.warn(warning)


@app.command()
@handles_errors
def lock(file: FileOption = Path("deployer.yaml")) -> None:
    """Record the model's sha256, flavour and signature in deployer.lock."""
    from deployer.api import Project

    path = Project.load(file).lock()
    output.ok(f"wrote {path}")


@app.command()
@handles_errors
def serve(
    file: FileOption = Path("deployer.yaml"),
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: serving.workers).")
    ] = None,
) -> None:
    """Run the model server on this machine (no Docker), answering every contract.

    Routes: SageMaker /ping and /invocations; Vertex AI /vertex/health and
    /vertex/predict (or AIP_HEALTH_ROUTE / AIP_PREDICT_ROUTE); Azure ML /live, /ready
    and /score; Open Inference Protocol v2 under /v2; Prometheus /metrics.
    Stop with Ctrl-C.
    """
    from deployer.api import Project

    project = Project.load(file)
    for warning in project.decision_threshold().warnings:
        output.warn(warning)
    settings = project.serving_settings(host=host, port=port, workers=workers)
    if port is None:  # as the server binds: SAGEMAKER_BIND_TO_PORT, AIP_HTTP_PORT, config
        settings = settings.with_platform_port()
    output.ok(
        f"serving {project.name} ({project.flavor}) on http://{host}:{settings.port} "
        f"with {settings.workers} worker(s)"
    )
    project.serve(host=host, port=port, workers=workers)


@app.command()
@handles_errors
def build(
    file: FileOption = Path("deployer.yaml"),
    platform: Annotated[
        str | None, typer.Option(help="Target platform (default: image.platform, linux/amd64).")
    ] = None,
    tag: Annotated[str | None, typer.Option(help="Image tag (default: NAME:MODEL_SHA12).")] = None,
    refresh_wheels: Annotated[
        bool, typer.Option(help="Download the wheelhouse again instead of using the cache.")
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Rebuild every layer (the wheelhouse stays cached).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print the result.")] = False,
    output_format: OutputOption = Format.text,
) -> None:
    """Build the project's serving image with the local Docker engine.

    Dependencies are downloaded on this machine into a cached wheelhouse and installed
    in the image with networking off; the model is the last layer, so a new model
    rebuilds in seconds. Needs a running Docker engine.
    """
    from deployer.api import Project

    project = Project.load(file)
    show = quiet or output_format == Format.json
    threshold = project.decision_threshold()
    for warning in threshold.warnings:
        output.warn(warning)
    image = project.build(
        platform=platform,
        tag=tag,
        progress=None if show else output.progress_line,
        refresh_wheels=refresh_wheels,
        no_cache=no_cache,
    )
    if output_format == Format.json:
        output.emit_json({"ok": True, **image.to_dict()})
        return
    output.ok(f"built {image.ref}")
    output.out.print(f"  id       {image.id}")
    output.out.print(f"  version  {image.version}")
    output.out.print(f"  size     {image.size / 1e6:.0f} MB")
    note = threshold.note()
    if note:
        output.out.print(f"  decision {note}")


@app.command()
@handles_errors
def check(
    image: Annotated[
        str | None, typer.Argument(help="Image to check (default: the project's built image).")
    ] = None,
    file: FileOption = Path("deployer.yaml"),
    output_format: OutputOption = Format.text,
) -> None:
    """Run the image and prove every cloud's serving contract before anything is pushed.

    SageMaker (`serve`, /ping within 2 s, /invocations), Vertex AI (AIP_* port and
    routes), Azure ML (declared routes), OIP v2 and /metrics; once as root and once as a
    non-root user with a read-only root filesystem; then a clean exit on SIGTERM.
    Exit 0 only when every check passes.
    """
    from deployer.api import Project
    from deployer.errors import EXIT_FAILED

    project = Project.load(file)
    if output_format == Format.text:
        output.progress_line(f"checking {image or project.image_ref()} (two containers per mode)")
    report = project.check(image)
    if output_format == Format.json:
        output.emit_json({"ok": report.passed, **report.to_dict()})
    else:
        output.render_check(report)
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


@app.command()
@handles_errors
def push(
    to: ToOption,
    file: FileOption = Path("deployer.yaml"),
    strategy: Annotated[
        str,
        typer.Option(help="all-at-once, canary:N or linear:N (N percent), each cloud's own way."),
    ] = "all-at-once",
    bake: Annotated[
        float, typer.Option(help="Seconds to watch a canary or linear step before going on.")
    ] = 0.0,
    on_failure: Annotated[
        str,
        typer.Option(
            help="rollback: if any target fails, every changed target goes back (new ones are "
            "removed). keep: the others stay new and the release is reported degraded."
        ),
    ] = "rollback",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build, then show what would change; change nothing.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds to wait for each target's rollout (default: what the strategy needs "
            "there, steps x (bake + the provider's provisioning allowance), as `plan` shows). "
            "Shorter than that is refused."
        ),
    ] = None,
    reason: ReasonOption = None,
    override_gates: OverrideGatesOption = False,
    output_format: OutputOption = Format.text,
) -> None:
    """Build the image once, then deploy it to every target in parallel.

    Each target: publish the image to its registry, create or update the endpoint with
    the strategy, wait until healthy, send one prediction through the target's own
    invoke path. Then the failure policy applies to the whole release. A journal of every
    step is written to .deployer/journal/, a record to .deployer/audit.jsonl. Re-running
    with nothing changed changes nothing. Exit 0 only when every target is healthy.
    Before anything (the build included), deployer.yaml's release gates are checked: a
    failing one stops the push with exit 1, unless --override-gates --reason "...".

    Example: deployer push --to aws,gcp,azure --strategy canary:10 --bake 300
    """
    from deployer.api import Project

    if on_failure not in ("rollback", "keep"):
        raise UsageError(f"--on-failure must be rollback or keep, not {on_failure!r}")
    project = Project.load(file)
    targets = split_targets(to) or []
    quiet = output_format == Format.json
    with output.LiveTargets(targets, enabled=not quiet) as live:
        result = project.push(
            targets,
            strategy=strategy,
            bake_seconds=bake,
            on_failure=on_failure,  # type: ignore[arg-type]
            dry_run=dry_run,
            timeout=timeout,
            progress=None if quiet else live.build_line,
            events=None if quiet else live.event,
            reason=reason,
            override_gates=override_gates,
        )
    if output_format == Format.json:
        output.emit_json(result.to_dict())
    else:
        cli_release.render_gates(result.gates, (result.override or {}).get("reason"))
    cli_release.stop_if_blocked(result.blocked)
    if output_format == Format.text and dry_run:
        output.render_plans(result.plans)
    elif output_format == Format.text:
        output.render_push(result)
    if dry_run and result.refused:
        output.render_refusals(result.plans, strategy)
        raise typer.Exit(EXIT_BAD_INPUT)
    if not result.ok and not dry_run:
        raise typer.Exit(EXIT_FAILED)


@app.command()
@handles_errors
def plan(
    to: ToOption,
    file: FileOption = Path("deployer.yaml"),
    strategy: Annotated[
        str, typer.Option(help="The strategy `push` would use (for its timeout).")
    ] = "all-at-once",
    bake: Annotated[float, typer.Option(help="The --bake `push` would use.")] = 0.0,
    timeout: Annotated[
        float | None, typer.Option(help="The --timeout `push` would use (checked).")
    ] = None,
    reason: ReasonOption = None,
    override_gates: OverrideGatesOption = False,
    output_format: OutputOption = Format.text,
) -> None:
    """Show what `push` would create, update or delete on each target, and the timeout its
    rollout gets there. Changes nothing there. Exits 2 when a target would refuse the
    strategy (for example a canary its fleet cannot hold), saying what would work; exits
    1 when a release gate fails (see push)."""
    from deployer.api import Project
    from deployer.orchestrate import plan_dicts, push_options

    project = Project.load(file)
    targets = split_targets(to) or []
    timeouts = project.push_timeouts(targets, strategy=strategy, bake_seconds=bake, timeout=timeout)
    parsed = push_options(strategy, bake, "rollback")[0]
    quiet = output_format == Format.json
    gates = project.check_gates(targets, reason=reason, override=override_gates)
    if quiet and gates.blocked:
        output.emit_json({"ok": False, "status": "blocked", "gates": gates.to_dicts()})
    elif not quiet:
        cli_release.render_gates(gates.to_dicts(), gates.override)
    cli_release.stop_if_blocked(gates.blocked)
    found = project.plan(
        targets,
        strategy=strategy,
        bake_seconds=bake,
        progress=None if quiet else output.progress_line,
    )
    plans = plan_dicts(found, parsed, timeouts)
    refused = any(not p.ok for p in found)
    if quiet:
        output.emit_json({"ok": not refused, "plans": plans, "gates": gates.to_dicts()})
    else:
        output.render_plans(plans)
    if refused:
        if not quiet:
            output.render_refusals(plans, str(parsed))
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
@handles_errors
def render(
    to: Annotated[str, typer.Option("--to", "-t", help="The target whose manifests to render.")],
    file: FileOption = Path("deployer.yaml"),
    image: Annotated[
        str | None,
        typer.Option(help="A pushed image ref to render for (default: build and render)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write one file per object into this folder.")
    ] = None,
) -> None:
    """Write a target's manifests to stdout (or a folder) for GitOps, changing nothing.

    Example: deployer render --to k8s --image registry.example.com/iris:abc --out manifests/
    """
    from deployer.api import Project

    result = Project.load(file).render(to, image=image, out=out, progress=output.progress_line)
    if isinstance(result, str):
        output.out.print(result, markup=False, highlight=False, end="")
    else:
        for path in result:
            output.ok(f"wrote {path}")


@app.command()
@handles_errors
def status(
    to: Annotated[
        str | None, typer.Option("--to", "-t", help="Targets, comma-separated (default: all).")
    ] = None,
    file: FileOption = Path("deployer.yaml"),
    output_format: OutputOption = Format.text,
) -> None:
    """Show each target's state, live version and URL. Exit 1 if any is not healthy."""
    from deployer.api import Project

    statuses = Project.load(file).status(split_targets(to))
    if output_format == Format.json:
        output.emit_json(
            {"ok": all(s.healthy for s in statuses), "targets": [s.to_dict() for s in statuses]}
        )
    else:
        output.render_status(statuses)
    if not all(s.healthy for s in statuses):
        raise typer.Exit(EXIT_FAILED)


@app.command()
@handles_errors
def predict(
    to: Annotated[str, typer.Option("--to", "-t", help="The target to call.")],
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="Request body; '@FILE' reads a file, '-' stdin."),
    ] = None,
    file: FileOption = Path("deployer.yaml"),
    content_type: Annotated[
        str, typer.Option(help="Content type of the body.")
    ] = "application/json",
    accept: Annotated[str | None, typer.Option(help="Wanted response type.")] = None,
) -> None:
    """Send a prediction request through the target's real endpoint and print the answer.

    Example: deployer predict --to local -d '[[5.1, 3.5, 1.4, 0.2]]'
    """
    import sys

    from deployer.api import Project

    if data is None or data == "-":
        body = sys.stdin.buffer.read()
    elif data.startswith("@"):
        from deployer.errors import require_regular

        require_regular(Path(data[1:]))  # a FIFO or device is refused, never opened
        try:
            body = Path(data[1:]).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {data[1:]}: {exc.strerror}") from None
    else:
        body = data.encode()
    result = Project.load(file).predict(to, body, content_type, accept)
    sys.stdout.buffer.write(result.body + (b"" if result.body.endswith(b"\n") else b"\n"))
    if not 200 <= result.status < 300:
        output.error(f"{to} answered {result.status}")
        raise typer.Exit(EXIT_FAILED)


@app.command()
@handles_errors
def rollback(
    to: ToOption, file: FileOption = Path("deployer.yaml"), reason: ReasonOption = None
) -> None:
    """Return each target to its previous version (recorded in .deployer/audit.jsonl)."""
    from deployer.api import Project

    for deployment in Project.load(file).rollback(
        split_targets(to) or [], progress=output.progress_line, reason=reason
    ):
        output.ok(
            f"{deployment.target}: back on {deployment.version} (was {deployment.previous_version})"
        )


@app.command()
@handles_errors
def destroy(
    to: ToOption,
    file: FileOption = Path("deployer.yaml"),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Say which backends would leave router.yaml; remove nothing."
        ),
    ] = False,
    reason: ReasonOption = None,
    output_format: OutputOption = Format.text,
) -> None:
    """Remove everything deployer created on each target (found by its labels), then the
    targets' backends from router.yaml when every target is gone (recorded in
    .deployer/audit.jsonl)."""
    from deployer.api import Project

    names = split_targets(to) or []
    project = Project.load(file)
    if not yes and not dry_run and output_format == Format.text:
        typer.confirm(f"destroy {', '.join(names)} of project {project.name}?", abort=True)
    result = project.destroy(
        names,
        dry_run=dry_run,
        progress=None if output_format == Format.json else output.progress_line,
        reason=reason,
    )
    if output_format == Format.json:
        output.emit_json({"ok": True, **result.to_dict()})
        return
    for name, items in result.items():
        if dry_run:
            output.ok(f"{name}: would be destroyed (dry run)")
        else:
            output.ok(
                f"{name}: removed {len(items)} resource(s)"
                if items
                else f"{name}: nothing to remove"
            )
    if result.router_backends:
        verb = "would remove" if dry_run else "removed"
        output.ok(
            f"{result.router_manifest}: {verb} backend(s) {', '.join(result.router_backends)}"
        )


@app.command()
def version() -> None:
    """Print the deployer version."""
    output.out.print(__version__)


cli_release.register(app)  # deployer audit verify, deployer history
register_evaluate(app)
register_monitoring(app)  # deployer baseline, deployer drift
register_alerts(app)  # deployer alerts, deployer dashboard
register_batch(app)


def main() -> None:
    """Console entry point: never show a traceback unless DEPLOYER_DEBUG is set."""
    output.run_cli(app)
