"""What watching the model costs the server: the same server and model with
(a) nothing, (b) the streaming drift metrics on (a baked baseline), (c) capture at 100%
of requests to a folder. Throughput and p50/p99 latency per setting, and the ratios
to (a). The issue's bars: drift metrics cost <= 5% of the throughput, capture at 100%
adds <= 1 ms at p99.

    python benchmarks/capture_overhead.py                      # c=1,32, 10 s a point, 3 rounds
    python benchmarks/capture_overhead.py --duration 3 --rounds 1   # quick look

Reuses benchmarks/serving.py's machinery (wrk with post.lua, the server pinned to core 0
and wrk to core 1, disturbed runs measured again) and its iris model
(benchmarks/train_iris.py). Needs wrk and taskset; run from the repository with the
venv that has deployer and the sklearn extra.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import serving as bench  # benchmarks/serving.py, beside this file

from deployer.serving.baseline_bins import Distribution

SETTINGS = ("none", "drift", "capture")
BODY = {"instances": [bench.ROW]}


def write_baseline(model_path: Path, target: Path) -> None:
    """A baseline of the iris training data: deciles per feature, the predicted classes."""
    import joblib
    from sklearn.datasets import load_iris

    features, _ = load_iris(return_X_y=True)
    model = joblib.load(model_path)
    out: dict[str, Any] = {"model_sha256": "benchmark", "features": {}}
    for i in range(features.shape[1]):
        edges = sorted(set(np.quantile(features[:, i], np.linspace(0.1, 0.9, 9)).tolist()))
        shell = Distribution("numeric", (0.0,) * (len(edges) + 1), edges=tuple(edges))
        counts, _ = shell.counts(features[:, i])
        out["features"][f"f{i}"] = {
            "kind": "numeric",
            "edges": edges,
            "fractions": (counts / counts.sum()).tolist(),
            "missing": 0.0,
        }
    predicted = model.predict(features)
    classes = sorted({str(int(c)) for c in predicted})
    shares = [float(np.mean(predicted.astype(int).astype(str) == c)) for c in classes]
    out["prediction"] = {
        "kind": "categorical",
        "categories": classes,
        "fractions": [*shares, 0.0],
        "missing": 0.0,
    }
    target.write_text(json.dumps(out))


def server_spec(setting: str, model: Path, work: Path) -> bench.ServerSpec:
    """Our server with ``setting``'s monitoring."""
    port = bench.free_port()
    settings: dict[str, Any] = {
        "model_name": bench.MODEL_NAME,
        "flavor": "sklearn",
        "model_path": str(model),
        "host": "127.0.0.1",
        "port": port,
        "workers": 1,
    }
    env = {k: v for k, v in os.environ.items() if k != "DEPLOYER_CAPTURE"}
    if setting == "drift":
        settings["baseline_path"] = str(work / "baseline.json")
    if setting == "capture":
        folder = work / "capture"
        shutil.rmtree(folder, ignore_errors=True)
        spec = {"sample": 1.0, "destination": str(folder), "drop": [], "hash": []}
        env["DEPLOYER_CAPTURE"] = json.dumps(spec)
    env["DEPLOYER_SERVING_SETTINGS"] = json.dumps(settings)
    command = [sys.executable, "-m", "deployer.serving", "serve"]
    return bench.ServerSpec(setting, command, env, port, "/ping", ("invocations",))


def run_round(args: argparse.Namespace, number: int, work: Path, model: Path) -> list[Any]:
    body = work / "body.json"
    plan = bench.Plan(
        concurrency=args.concurrency,
        duration_s=args.duration,
        warmup_s=args.warmup,
        pin=True,
        round=number,
        bodies={"invocations": body},
        startup_timeout_s=120,
        max_other_cpu=args.max_other_cpu,
        retries=args.retries,
        quiet_wait_s=args.quiet_wait,
    )
    order = SETTINGS[number % 3 :] + SETTINGS[: number % 3]
    points = []
    for setting in order:
        print(f"round {number + 1}: {setting}", flush=True)
        points += bench.benchmark_server(server_spec(setting, model, work), ["invocations"], plan)
    return points


def cpu_us_per_request(p: Any) -> float:
    """The server's CPU time per answered request: what the work costs, whatever else
    the machine runs (throughput on a busy core is mostly the others' share)."""
    return p.server_cpu_pct / 100 * p.duration_s / max(p.requests, 1) * 1e6


def median_point(points: list[Any], max_other: float) -> dict[str, float]:
    clean = [p for p in points if p.other_cpu_pct <= max_other] or points
    return {
        "rps": statistics.median(p.ok_rps for p in clean),
        "p50": statistics.median(p.p50_ms for p in clean),
        "p99": statistics.median(p.p99_ms for p in clean),
        "cpu_us": statistics.median(cpu_us_per_request(p) for p in points),
        "other": statistics.median(p.other_cpu_pct for p in points),
        "runs": len(clean),
        "all": len(points),
    }


def table(points: list[Any], concurrency: list[int], max_other: float) -> str:
    """Medians per concurrency and setting, and the ratios to no monitoring."""
    lines = [
        "| c | setting | req/s | p50 ms | p99 ms | req/s vs none | p99 added (ms) "
        "| server CPU µs/request (all runs) | vs none | other procs on core 0 | clean runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in concurrency:
        rows = {
            s: median_point([p for p in points if p.server == s and p.concurrency == c], max_other)
            for s in SETTINGS
        }
        base = rows["none"]
        for setting in SETTINGS:
            row = rows[setting]
            lines.append(
                f"| {c} | {setting} | {row['rps']:.0f} | {row['p50']:.2f} | {row['p99']:.2f} "
                f"| {row['rps'] / base['rps']:.3f} | {row['p99'] - base['p99']:+.2f} "
                f"| {row['cpu_us']:.0f} | {row['cpu_us'] / base['cpu_us']:.3f} "
                f"| {row['other']:.0f}% | {row['runs']}/{row['all']} |"
            )
    return "\n".join(lines)


def report(path: Path, max_other: float) -> None:
    """The table of a saved run (--json) again."""
    data = json.loads(path.read_text())
    points = [bench.Point(**p) for p in data["points"]]
    concurrency = sorted({p.concurrency for p in points})
    print(json.dumps(data["facts"]))
    print(table(points, concurrency, max_other))


def micro(work: Path, model: Path, count: int) -> dict[str, float]:
    """CPU microseconds per single-row request of each hook, measured in this process
    with the thread's own CPU clock (what the request path and the writer thread spend;
    other processes on the machine do not count)."""
    from deployer.providers.monitoring import CaptureSpec
    from deployer.serving import request_context
    from deployer.serving.capture import Capture
    from deployer.serving.capture_record import build_line
    from deployer.serving.capture_sinks import FolderSink
    from deployer.serving.columns import ColumnNames
    from deployer.serving.drift_metrics import DriftMetrics, load_baseline

    rows, result = np.array([bench.ROW]), np.array([0])
    headers = {"content-type": "application/json"}

    def per_request(action: Any) -> float:
        started = time.thread_time()
        for _ in range(count):
            action()
        return (time.thread_time() - started) / count * 1e6

    features, prediction = load_baseline(str(work / "baseline.json"))
    drift = DriftMetrics(features, prediction, ColumnNames())

    def observe_drift() -> None:
        drift.observe("r", rows, result)

    drift_us = per_request(observe_drift)
    started = time.thread_time()
    list(drift.collect())  # the scrape: flush and PSI
    scrape_ms = (time.thread_time() - started) * 1e3
    spec = CaptureSpec(sample=1.0, destination=str(work / "micro-capture"))
    capture = Capture(spec, ColumnNames(), "v1", queue_size=count + 1)
    queue_us = per_request(lambda: capture.observe("r", rows, result))
    sink = FolderSink(work / "micro-capture", 64 << 20, 1 << 30)
    lines: list[str] = []

    def write_one() -> None:
        lines.append(build_line(spec, "v1", "r", time.time(), rows, result, ColumnNames()))
        if len(lines) == 512:
            sink.write(lines)
            lines.clear()

    writer_us = per_request(write_one)
    sink.close()
    begin_us = per_request(lambda: (request_context.begin(headers), request_context.claim()))
    return {
        "request_id_us": round(begin_us, 2),
        "drift_observe_us": round(drift_us, 2),
        "drift_scrape_ms": round(scrape_ms, 2),
        "capture_queue_us": round(queue_us, 2),
        "capture_writer_us": round(writer_us, 2),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-other-cpu", type=float, default=10.0)
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--micro", type=int, default=0, help="only the in-process hook costs, N")
    parser.add_argument("--report", type=Path, default=None, help="a saved --json run's table")
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.report:
        report(args.report, args.max_other_cpu)
        return 0
    signal.signal(signal.SIGTERM, _stop)  # a stopped run still stops its server (finally)
    work = Path(tempfile.mkdtemp(prefix="capture-bench-"))
    try:
        model = work / "iris.joblib"
        subprocess.run(
            [sys.executable, str(bench.TRAIN_SCRIPT), "--joblib", str(model)],
            check=True,
            capture_output=True,
        )
        write_baseline(model, work / "baseline.json")
        (work / "body.json").write_text(json.dumps(BODY))
        if args.micro:
            print(json.dumps(micro(work, model, args.micro)))
            return 0
        facts = bench.machine_facts()
        points = []
        for number in range(args.rounds):
            points += run_round(args, number, work, model)
        captured = sum(1 for f in (work / "capture").glob("capture-*.jsonl") for _ in f.open())
        print(json.dumps(facts))
        print(f"records captured in the last capture run: {captured}")
        print(table(points, args.concurrency, args.max_other_cpu))
        if args.json:
            data = {"facts": facts, "points": [p.__dict__ for p in points]}
            args.json.write_text(json.dumps(data, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
