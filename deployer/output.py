"""Terminal and JSON output for the CLI: messages on stderr, data on stdout."""

from __future__ import annotations

import enum
import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class Format(str, enum.Enum):
    text = "text"
    json = "json"


def run_cli(app: Any) -> None:
    """Run a typer app as a console entry point: no traceback unless DEPLOYER_DEBUG is set."""
    import os

    from deployer.errors import EXIT_FAILED

    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:
        if os.environ.get("DEPLOYER_DEBUG"):
            raise
        error(
            f"unexpected {type(exc).__name__}: {exc}",
            hint="this is a bug in deployer; rerun with DEPLOYER_DEBUG=1 and report the traceback",
        )
        raise SystemExit(EXIT_FAILED) from None


F = TypeVar("F", bound=Callable[..., Any])


def handles_errors(command: F) -> F:
    """Turn DeployerError into a message (or a JSON error document, when the command's
    ``output_format`` is json) and its exit code. Every command of the CLI uses it,
    plugins' (``deployer router ...``) included."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from deployer.errors import ConfigError, DeployerError

        fmt = kwargs.get("output_format", Format.text)
        try:
            return command(*args, **kwargs)
        except DeployerError as exc:
            if fmt == Format.json:
                problems = exc.problems if isinstance(exc, ConfigError) else [exc.message]
                emit_json(
                    {"ok": False, "error": exc.message, "problems": problems, "hint": exc.hint}
                )
            else:
                error(exc.message, exc.hint)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def emit_json(payload: Any) -> None:
    """One JSON document on stdout (for CI)."""
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def error(message: str, hint: str | None = None) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True)
    if hint:
        err.print(f"[dim]hint:[/] {hint}")


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {message}")


def ok(message: str) -> None:
    err.print(f"[green]✓[/] {message}")


def progress_line(message: str) -> None:
    """One line of progress from a slow operation, on stderr."""
    err.print(f"[dim]{message}[/]", markup=True)


def render_check(report: Any) -> None:
    """The conformance report as a table: one row per contract, one column per mode."""
    modes = list(dict.fromkeys(r.mode for r in report.results))
    table = Table(title=f"contracts of {report.image}", title_justify="left")
    table.add_column("contract")
    for mode in modes:
        table.add_column(mode)
    cells: dict[str, dict[str, str]] = {}
    for r in report.results:
        mark = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
        cells.setdefault(r.contract, {})[r.mode] = f"{mark} {r.detail}"
    for contract, by_mode in cells.items():
        table.add_row(contract, *(by_mode.get(m, "") for m in modes))
    out.print(table)
    if report.passed:
        ok("every contract passed")
    else:
        error("some contracts failed (see the table)")


def render_plans(plans: list[dict[str, Any]]) -> None:
    symbols = {
        "create": "[green]+[/]",
        "update": "[yellow]~[/]",
        "delete": "[red]-[/]",
        "keep": "[dim]=[/]",
    }
    for plan in plans:
        out.print(
            f"[bold]{plan['target']}[/]" + ("" if plan["changed"] else " [dim](no changes)[/]")
        )
        if plan.get("timeout_seconds") is not None:
            out.print(
                f"  push timeout {plan['timeout_seconds']:g} s"
                f" [dim]({plan.get('strategy', 'all-at-once')})[/]"
            )
        for change in plan["changes"]:
            out.print(
                f"  {symbols[change['action']]} {change['resource']}  [dim]{change['detail']}[/]"
            )
        for problem in plan.get("problems") or []:
            out.print(f"  [red]! refuses:[/] {escape(problem)}")
        for note in plan.get("notes") or []:
            out.print(f"  [yellow]note:[/] {escape(note)}")


def render_refusals(plans: list[dict[str, Any]], strategy: str) -> None:
    """On stderr, after the plans: which targets would refuse ``strategy`` (their plans
    above say why and what would work; ``plan`` then exits 2)."""
    refused = [p["target"] for p in plans if p.get("problems")]
    if refused:
        error(
            f"{', '.join(refused)} would refuse {strategy}: nothing was changed",
            hint="see each refusing target's `! refuses` line above for what would work",
        )


def render_push(result: Any) -> None:
    """The release summary: per target what happened, then what changed and what is left."""
    colors = {"succeeded": "green", "degraded": "yellow", "rolled back": "red"}
    title = (
        f"{result.project} {result.version}: [{colors.get(result.status, 'red')}]"
        f"{result.status}[/] in {result.seconds:.1f}s ({result.strategy}, on failure "
        f"{result.policy})"
    )
    table = Table(title=title, title_justify="left")
    for column in ("target", "provider", "outcome", "live version", "was", "url", "time"):
        table.add_column(column)
    marks = {"updated": "green", "unchanged": "green", "rolled back": "yellow", "removed": "yellow"}
    for t in result.targets:
        color = marks.get(t.outcome, "red")
        table.add_row(
            t.target,
            t.provider,
            f"[{color}]{t.outcome}[/]",
            t.live_version or "-",
            t.previous_version or "-",
            t.url or "",
            f"{t.seconds:.1f}s",
        )
    out.print(table)
    for t in result.targets:
        if t.error:
            error(f"{t.target}: {t.error}")


class LiveTargets:
    """Each target's current stage and elapsed time: a live table on a terminal,
    one line per event otherwise (CI logs)."""

    def __init__(self, targets: list[str], enabled: bool = True) -> None:
        import threading
        import time

        self._time = time.monotonic
        self._lock = threading.Lock()
        self.enabled = enabled
        self.rows: dict[str, list[Any]] = {t: ["building the image", self._time()] for t in targets}
        self._live: Any = None
        if enabled and err.is_terminal:
            from rich.live import Live

            self._live = Live(self._table(), console=err, refresh_per_second=4, transient=True)

    def __enter__(self) -> LiveTargets:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def _table(self) -> Table:
        table = Table(show_header=True, box=None)
        table.add_column("target")
        table.add_column("stage")
        table.add_column("elapsed", justify="right")
        now = self._time()
        for target, (stage, started) in self.rows.items():
            table.add_row(target, stage[:90], f"{now - started:5.1f}s")
        return table

    def build_line(self, message: str) -> None:
        """Progress of the shared image build (before any target starts)."""
        if self._live is not None:
            with self._lock:
                for row in self.rows.values():
                    row[0] = f"building: {message}"
            self._live.update(self._table())
        elif self.enabled:
            progress_line(message)

    def event(self, target: str, message: str) -> None:
        with self._lock:
            row = self.rows.setdefault(target, [message, self._time()])
            if row[0].startswith(("building", "waiting")):
                row[1] = self._time()
            row[0] = message
        if self._live is not None:
            self._live.update(self._table())
        elif self.enabled:
            progress_line(f"[{target}] {message}")


def render_status(statuses: list[Any]) -> None:
    table = Table()
    for column in ("target", "state", "version", "url", "reason"):
        table.add_column(column)
    for s in statuses:
        color = "green" if s.healthy else "red"
        table.add_row(
            s.target, f"[{color}]{s.state}[/]", s.version or "", s.url or "", s.reason or ""
        )
    out.print(table)
