"""A Grafana dashboard (its JSON model, importable as is) over the image's metrics
(``deployer_*``: requests, errors, latency percentiles, readiness, batch sizes, drift) and
the router's (``deployer_router_*``: per-backend traffic, errors, latency, ejections).

Two variables: ``datasource`` (any Prometheus data source) and ``job`` (the scrape jobs
that expose ``deployer_model_ready``). Every query uses ``$__rate_interval``.
"""

from __future__ import annotations

from typing import Any

from deployer.alerting.rules import (
    BATCH_SIZE,
    FEATURE_PSI,
    MODEL_READY,
    PREDICT_ROUTES,
    PREDICTION_PSI,
    REQUESTS,
)

SCHEMA_VERSION = 39
UID = "deployer-model"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
JOB = 'job=~"$job"'
RATE = "$__rate_interval"
PREDICT = f'route=~"{"|".join(PREDICT_ROUTES)}"'
ROUTER = "deployer_router_"
WIDTH = 24


def queries() -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    """Each panel: (title, panel type, unit, [(PromQL, legend)]), rows as ("row", title...)."""
    count = f"{REQUESTS}_count"
    bucket = f"sum by (le) (rate({REQUESTS}_bucket{{{JOB},{PREDICT}}}[{RATE}]))"
    batch = f"sum by (le) (rate({BATCH_SIZE}_bucket{{{JOB}}}[{RATE}]))"
    backend_bucket = f"sum by (backend, le) (rate({ROUTER}backend_latency_seconds_bucket[{RATE}]))"
    return [
        ("The model", "row", "", []),
        ("Requests per second by route", "timeseries", "reqps",
         [(f"sum by (route) (rate({count}{{{JOB}}}[{RATE}]))", "{{route}}")]),
        ("Error rate (5xx / predictions)", "timeseries", "percentunit",
         [(f'(sum(rate({count}{{{JOB},{PREDICT},status=~"5.."}}[{RATE}])) or vector(0)) '
           f"/ sum(rate({count}{{{JOB},{PREDICT}}}[{RATE}]))", "5xx / predictions")]),
        ("Answers other than 2xx per second, by status", "timeseries", "reqps",
         [(f'sum by (status) (rate({count}{{{JOB},{PREDICT},status!~"2.."}}[{RATE}]))',
           "{{status}}")]),
        ("Prediction latency", "timeseries", "s",
         [(f"histogram_quantile({q}, {bucket})", f"p{round(q * 100)}") for q in (0.5, 0.9, 0.99)]),
        ("Model ready", "stat", "none",
         [(f"min by (instance) ({MODEL_READY}{{{JOB}}})", "{{instance}}")]),
        ("Requests per predict call (micro-batching)", "timeseries", "none",
         [(f"histogram_quantile({q}, {batch})", f"p{round(q * 100)}") for q in (0.5, 0.99)]
         + [(f"sum(rate({BATCH_SIZE}_sum{{{JOB}}}[{RATE}])) "
             f"/ sum(rate({BATCH_SIZE}_count{{{JOB}}}[{RATE}]))", "mean")]),
        ("Drift: PSI against the training baseline", "timeseries", "none",
         [(f"max by (feature) ({FEATURE_PSI}{{{JOB}}})", "{{feature}}"),
          (f"max({PREDICTION_PSI}{{{JOB}}})", "predictions")]),
        ("The router", "row", "", []),
        ("Router: attempts per second by backend", "timeseries", "reqps",
         [(f"sum by (backend) (rate({ROUTER}backend_requests_total[{RATE}]))", "{{backend}}")]),
        ("Router: failed attempts by backend and kind", "timeseries", "reqps",
         [(f"sum by (backend, kind) (rate({ROUTER}backend_errors_total[{RATE}]))",
           "{{backend}} {{kind}}")]),
        ("Router: p99 attempt latency by backend", "timeseries", "s",
         [(f"histogram_quantile(0.99, {backend_bucket})", "{{backend}}")]),
        ("Router: ejections and healthy backends", "timeseries", "none",
         [(f"sum by (backend) (increase({ROUTER}backend_ejections_total[{RATE}]))",
           "{{backend}} ejected"),
          (f"max by (backend) ({ROUTER}backend_healthy)", "{{backend}} healthy")]),
        ("Router: client requests by status", "timeseries", "reqps",
         [(f"sum by (code) (rate({ROUTER}requests_total[{RATE}]))", "{{code}}")]),
    ]  # fmt: skip


def panel(pid: int, title: str, kind: str, unit: str, exprs: list[tuple[str, str]],
          pos: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    """One panel of Grafana's JSON model."""
    if kind == "row":
        return {"id": pid, "type": "row", "title": title, "collapsed": False,
                "gridPos": pos, "panels": []}  # fmt: skip
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": pos,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
        if kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": e, "legendFormat": lg}
            for i, (e, lg) in enumerate(exprs)
        ],
    }


def layout() -> list[dict[str, Any]]:
    """The panels placed on Grafana's 24-column grid: two per line, rows full width."""
    panels, x, y = [], 0, 0
    for pid, (title, kind, unit, exprs) in enumerate(queries(), start=1):
        if kind == "row":
            y += 8 if x else 0
            panels.append(
                panel(pid, title, kind, unit, exprs, {"h": 1, "w": WIDTH, "x": 0, "y": y})
            )
            x, y = 0, y + 1
            continue
        panels.append(panel(pid, title, kind, unit, exprs, {"h": 8, "w": 12, "x": x, "y": y}))
        x, y = (12, y) if x == 0 else (0, y + 8)
    return panels


def dashboard(title: str = "deployer") -> dict[str, Any]:
    """The dashboard's JSON model."""
    return {
        "uid": UID,
        "title": title,
        "tags": ["deployer"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "hide": 0,
                    "refresh": 1,
                },
                {
                    "name": "job",
                    "label": "job",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {"query": f"label_values({MODEL_READY}, job)", "refId": "jobs"},
                    "definition": f"label_values({MODEL_READY}, job)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "hide": 0,
                    "refresh": 2,
                    "sort": 1,
                },
            ]
        },
        "panels": layout(),
    }
