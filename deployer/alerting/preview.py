"""``deployer dashboard preview``: the dashboard's panels drawn from a real Prometheus
(``/api/v1/query_range``) as one HTML page of inline SVG charts, laid out on the
dashboard's grid, and (``screenshot``) a PNG of it taken by a headless Chromium.

This is what the dashboard shows without a Grafana: the same queries, the same grid, the
same legends; ``$__rate_interval`` becomes four scrape steps, ``$job`` every job.
"""

from __future__ import annotations

import html
import math
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from deployer.errors import DeployerError, MissingDependencyError

COLORS = ("#73bf69", "#f2cc0c", "#5794f2", "#ff780a", "#b877d9", "#f2495c", "#8ab8ff", "#ffb357")
CELL_W, CELL_H = 52, 30  # pixels per grid column and row
Series = list[tuple[str, list[tuple[float, float]]]]


def query_range(
    client: httpx.Client, expr: str, start: float, end: float, step: float
) -> list[dict[str, Any]]:
    """The matrix Prometheus answers for ``expr``; a DeployerError carries its error."""
    try:
        answer = client.get(
            "/api/v1/query_range",
            params={"query": expr, "start": start, "end": end, "step": step},
        )
    except httpx.TransportError as exc:
        raise DeployerError(f"--prometheus: cannot reach {client.base_url}: {exc}") from exc
    body = answer.json()
    if body.get("status") != "success":
        raise DeployerError(f"Prometheus refused {expr!r}: {body.get('error')}")
    return list(body["data"]["result"])


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def fmt_value(value: float, unit: str) -> str:
    if math.isnan(value):
        return "-"
    if unit == "s":
        return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    if unit == "reqps":
        return f"{value:.3g} req/s"
    return f"{value:.3g}"


def panel_series(
    client: httpx.Client, panel: dict[str, Any], span: tuple[float, float, float]
) -> Series:
    start, end, step = span
    found: Series = []
    for target in panel.get("targets", []):
        expr = target["expr"].replace("$__rate_interval", f"{int(step * 4)}s")
        expr = expr.replace("$job", ".*")
        for item in query_range(client, expr, start, end, step):
            points = [(float(t), float(v)) for t, v in item["values"]]
            found.append((legend(target.get("legendFormat", ""), item["metric"]), points))
    return found


def svg(panel: dict[str, Any], series: Series, width: int, height: int) -> str:
    """One panel as an SVG: a title, the lines (or a stat's last value) and a legend."""
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "none")
    title = html.escape(panel["title"])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
        f'<rect width="{width}" height="{height}" rx="4" fill="#181b1f" stroke="#2c3235"/>',
        f'<text x="10" y="20" fill="#ccccdc" font-size="13" font-weight="600">{title}</text>',
    ]
    points = [p for _, pts in series for p in pts if not math.isnan(p[1])]
    if not points:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" fill="#8e8e8e" '
                     'text-anchor="middle" font-size="13">No data</text></svg>')  # fmt: skip
        return "".join(parts)
    if panel["type"] == "stat":
        for i, (name, pts) in enumerate(series[:4]):
            x = 10 + i * (width - 20) / min(len(series), 4)
            parts.append(f'<text x="{x}" y="{height / 2 + 10}" fill="{COLORS[0]}" '
                         f'font-size="34" font-weight="600">{fmt_value(pts[-1][1], unit)}</text>'
                         f'<text x="{x}" y="{height - 14}" fill="#8e8e8e" font-size="11">'
                         f"{html.escape(name)}</text>")  # fmt: skip
        return "".join(parts) + "</svg>"
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    low, high = min(0.0, min(p[1] for p in points)), max(p[1] for p in points)
    high = high if high > low else low + 1
    left, top, right, bottom = 62, 32, width - 12, height - 22 - 14 * min(len(series), 3)
    sx = lambda t: left + (t - t0) / max(t1 - t0, 1e-9) * (right - left)  # noqa: E731
    sy = lambda v: bottom - (v - low) / (high - low) * (bottom - top)  # noqa: E731
    for k in range(5):
        v = low + (high - low) * k / 4
        parts.append(f'<line x1="{left}" x2="{right}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" '
                     f'stroke="#2c3235"/><text x="{left - 6}" y="{sy(v) + 4:.1f}" fill="#8e8e8e" '
                     f'font-size="10" text-anchor="end">{fmt_value(v, unit)}</text>')  # fmt: skip
    for i, (name, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        line = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in pts if not math.isnan(v))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{line}"/>')
        if i < 9:
            lx, ly = 10 + (i % 3) * (width - 20) / 3, bottom + 20 + (i // 3) * 14
            parts.append(f'<rect x="{lx}" y="{ly - 8}" width="10" height="3" fill="{color}"/>'
                         f'<text x="{lx + 14}" y="{ly - 4}" fill="#ccccdc" font-size="10">'
                         f"{html.escape(name or panel['title'])}</text>")  # fmt: skip
    return "".join(parts) + "</svg>"


def page(document: dict[str, Any], client: httpx.Client, minutes: float, step: float) -> str:
    """The HTML page: every panel at its grid position."""
    end = time.time()
    span = (end - minutes * 60, end, step)
    body, bottom = [], 0
    for panel in document["panels"]:
        pos = panel["gridPos"]
        x, y, w, h = pos["x"] * CELL_W, pos["y"] * CELL_H, pos["w"] * CELL_W, pos["h"] * CELL_H
        bottom = max(bottom, y + h)
        style = f"position:absolute;left:{x + 8}px;top:{y + 48}px"
        if panel["type"] == "row":
            body.append(f'<div style="{style};color:#ccccdc;font-size:16px;font-weight:600">'
                        f"{html.escape(panel['title'])}</div>")  # fmt: skip
            continue
        chart = svg(panel, panel_series(client, panel, span), w - 8, h - 8)
        body.append(f'<div style="{style}">{chart}</div>')
    title = html.escape(document["title"])
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>" + title + "</title></head>"
        "<body style='margin:0;background:#111217;font-family:DejaVu Sans,sans-serif;"
        f"width:{24 * CELL_W + 16}px;height:{bottom + 56}px'>"
        f"<div style='position:absolute;left:8px;top:12px;color:#ccccdc;font-size:20px'>{title}"
        f" <span style='color:#8e8e8e;font-size:13px'>last {minutes:g} min</span></div>"
        + "".join(body) + "</body></html>"
    )  # fmt: skip


def screenshot(index: Path, png: Path, width: int, height: int) -> None:
    """``chromium --headless --screenshot`` of ``index`` into ``png``."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise MissingDependencyError(
            "no chromium to take the screenshot", hint="apt-get install chromium"
        )
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={width},{height}", f"--screenshot={png}", index.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0 or not png.exists():
        raise DeployerError(f"chromium could not screenshot {index}: {done.stderr[-400:]}")


def preview(
    document: dict[str, Any], prometheus: str, out: Path, *, minutes: float = 15.0,
    step: float = 5.0, png: bool = False,
) -> list[Path]:  # fmt: skip
    """Write ``out/index.html`` (and ``out/dashboard.png``); the files written."""
    out.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=prometheus, timeout=30.0) as client:
        text = page(document, client, minutes, step)
    index = out / "index.html"
    index.write_text(text, encoding="utf-8")
    if not png:
        return [index]
    height = int(re.search(r"height:(\d+)px", text).group(1))  # type: ignore[union-attr]
    image = out / "dashboard.png"
    screenshot(index, image, 24 * CELL_W + 16, height)
    return [index, image]
