"""Release commands and options: ``deployer audit verify``, ``deployer history``, the
``--reason`` and ``--override-gates`` options of push/plan/rollback/destroy, and how gate
results are shown. Registered on the main app by ``deployer.cli``; imports only typer
and the output helpers at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from deployer import output
from deployer.errors import EXIT_FAILED, UsageError
from deployer.output import Format, handles_errors

ReasonOption = Annotated[
    str | None,
    typer.Option("--reason", help="Why: recorded in the audit log (.deployer/audit.jsonl)."),
]
OverrideGatesOption = Annotated[
    bool,
    typer.Option(
        "--override-gates",
        help="Go ahead although a release gate fails (needs --reason; both are recorded).",
    ),
]
FileOption = Annotated[
    Path,
    typer.Option("--file", "-f", envvar="DEPLOYER_FILE", help="Project file.", show_default=True),
]
OutputOption = Annotated[
    Format, typer.Option("--output", "-o", help="text for people, json for CI.")
]


def split_targets(value: str | None) -> list[str] | None:
    """``--to a,b`` as names (None when not given); an empty list is a usage error."""
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise UsageError("--to needs at least one target name")
    return names


audit_app = typer.Typer(
    name="audit",
    help="The audit log of every push, rollback and destroy (.deployer/audit.jsonl).",
    no_args_is_help=True,
    add_completion=False,
)


def render_gates(gates: list[dict[str, Any]], override: str | None = None) -> None:
    """Each gate's result on stderr: passed, failed (value and threshold), or overridden."""
    from deployer.gates import GateResult

    for found in gates:
        result = GateResult(**found)
        if result.passed:
            output.ok(f"gate {result.describe()}")
        elif override:
            output.warn(f"gate failed, overridden ({override}): {result.describe()}")
        else:
            output.error(f"gate failed: {result.describe()}")


def stop_if_blocked(blocked: bool) -> None:
    """Exit 1 saying that nothing changed, when a gate blocked the release."""
    if blocked:
        output.error(
            "a release gate failed: nothing was built or changed",
            hint="fix the model, or pass --override-gates --reason '...' (recorded)",
        )
        raise typer.Exit(EXIT_FAILED)


@audit_app.command("verify")
@handles_errors
def verify(
    file: FileOption = Path("deployer.yaml"), output_format: OutputOption = Format.text
) -> None:
    """Check the audit log's hash chain (exit 1 naming the first bad line).

    Exit 0 with the count of records when intact; exit 1 naming the first line that was
    edited, or after which records were deleted or reordered."""
    from deployer.audit import AuditLog

    found = AuditLog(file.resolve().parent).verify()
    if output_format == Format.json:
        output.emit_json(found.to_dict())
    elif found.ok:
        output.ok(f"{found.path}: {found.count} record(s), chain intact")
    else:
        output.error(f"{found.path}: line {found.bad_line}: {found.problem}")
        output.err.print(f"  the {found.count} record(s) before it are intact")
    if not found.ok:
        raise typer.Exit(EXIT_FAILED)


@handles_errors
def history(
    to: Annotated[
        str | None, typer.Option("--to", "-t", help="Targets, comma-separated (default: all).")
    ] = None,
    file: FileOption = Path("deployer.yaml"),
    live: Annotated[
        bool, typer.Option("--live/--no-live", help="Also ask each target what is live now.")
    ] = True,
    output_format: OutputOption = Format.text,
) -> None:
    """Each target's versions over time, from the audit log and the target.

    Who, when, why, metrics and outcome of every push, rollback and destroy recorded in
    .deployer/audit.jsonl, with the version live now (and its annotations) as the target
    reports it (--no-live: the log only)."""
    from deployer.api import Project

    found = Project.load(file).history(split_targets(to), live=live)
    if output_format == Format.json:
        output.emit_json({"ok": True, "targets": [t.to_dict() for t in found]})
        return
    for target in found:
        _render_target(target)


def _render_target(target: Any) -> None:
    from rich.table import Table

    live = f", live {target.live_version}" if target.live_version else ""
    state = f" ({target.state}{live})" if target.state else ""
    table = Table(title=f"{target.target}{state}", title_justify="left")
    for column in ("#", "when", "action", "version", "outcome", "who", "why", "metrics"):
        table.add_column(column)
    for entry in target.entries:
        why = entry.why.get("reason") or entry.why.get("git_message") or ""
        commit = (entry.why.get("git_commit") or "")[:12]
        metrics = ", ".join(
            f"{k} {v:.3g}" for k, v in list(entry.metrics.items())[:3] if isinstance(v, int | float)
        )
        table.add_row(
            ("● " if entry.live else "") + str(entry.seq),
            entry.time or "",
            entry.action,
            entry.version or "-",
            entry.outcome + (" (gates overridden)" if entry.override else ""),
            entry.who or "",
            f"{why} {commit}".strip(),
            metrics,
        )
    output.out.print(table)
    for key, value in target.annotations.items():
        output.out.print(f"  {key}: {value}")
    if target.note:
        output.warn(f"{target.target}: {target.note}")


def register(app: typer.Typer) -> None:
    """Add ``audit`` and ``history`` to the main app."""
    app.add_typer(audit_app)
    app.command("history")(history)
