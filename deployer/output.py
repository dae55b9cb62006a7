"""Terminal and JSON output for the CLI: messages on stderr, data on stdout."""

from __future__ import annotations

import enum
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class Format(str, enum.Enum):
    text = "text"
    json = "json"


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
        for change in plan["changes"]:
            out.print(
                f"  {symbols[change['action']]} {change['resource']}  [dim]{change['detail']}[/]"
            )


def render_push(result: Any) -> None:
    table = Table(title=f"{result.project} {result.version}", title_justify="left")
    for column in ("target", "result", "version", "url", "time"):
        table.add_column(column)
    for t in result.targets:
        if t.ok:
            state = "[green]updated[/]" if t.changed else "[green]unchanged[/]"
        else:
            state = "[red]rolled back[/]" if t.rolled_back else "[red]failed[/]"
        table.add_row(t.target, state, t.version or "", t.url or "", f"{t.seconds:.1f}s")
    out.print(table)
    for t in result.targets:
        if t.error:
            error(f"{t.target}: {t.error}")


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
