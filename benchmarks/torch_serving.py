"""Side-by-side PyTorch serving benchmark: our model server vs BentoML and LitServe (issue 16).

    .venv/bin/python benchmarks/torch_serving.py [--duration 10] [--concurrency 1,8,32]
        [--rounds 3] [--servers ours,bentoml,litserve] [--skip-setup] [--json out.json]

Every server loads the same TorchScript file (benchmarks/peers/torch_model.py: a 3-layer MLP,
64 features in, 10 logits out), runs one worker process and one torch thread
(``OMP_NUM_THREADS=1``), pinned with its whole process tree to core 0 while wrk runs on core
1, and is sent one row per request on its own JSON route:

* ours: ``POST /invocations`` ``{"instances": [[64 floats]]}`` (micro-batching on, our default);
* BentoML: ``POST /predict`` ``{"x": [[64 floats]]}`` (``@bentoml.api(batchable=True)``);
* LitServe: ``POST /predict`` ``{"x": [64 floats]}`` (``max_batch_size=64``, 1 ms timeout).

Before measuring, each server's answer must equal the logits torch computes for the row.
The load loop, the CPU accounting and the disturbed-run rule are serving.py's: see its
docstring and benchmarks/README.md.

Setup (skipped by ``--skip-setup``): the peers venv benchmarks/.peers/torch-venv gets
torch==2.13.0 (the CPU wheel), BentoML and LitServe; the model file is written to
benchmarks/.work/torch/. Our venv needs torch==2.13.0 too (``pip install torch==2.13.0``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import serving as base

HERE = Path(__file__).resolve().parent
WORK = base.WORK / "torch"
PEERS_VENV = HERE / ".peers" / "torch-venv"
PEER_PYTHON = PEERS_VENV / "bin" / "python"
MODEL_SCRIPT = HERE / "peers" / "torch_model.py"
MODEL_FILE = WORK / "mlp.pt"
FEATURES = 64
ROW = [round((i % 7) / 7 - 0.4, 4) for i in range(FEATURES)]
PEER_REQUIREMENTS = ("torch==2.13.0", "bentoml==1.4.40", "litserve==0.2.19")
VERSIONS = ("deployer", "torch", "numpy", "bentoml", "litserve", "uvicorn", "fastapi")
SERVERS = ("ours", "bentoml", "litserve")
PROTOCOL = "json"  # each server's own JSON route, one row per request
TARGET_CONCURRENCY = 32  # issue 16: ahead of every peer in req/s here, p99 no worse
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def ensure_setup() -> list[str]:
    """The peers venv and the model file; returns notes."""
    notes = []
    if not PEER_PYTHON.exists():
        subprocess.run([str(base.OUR_PYTHON), "-m", "venv", str(PEERS_VENV)], check=True)
    done = subprocess.run(
        [str(PEER_PYTHON), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"pip could not install the peers:\n{done.stdout[-3000:]}{done.stderr}")
    WORK.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(PEER_PYTHON), str(MODEL_SCRIPT), str(MODEL_FILE)], check=True)
    notes.append(f"model: {MODEL_FILE.name} written by peers/torch_model.py (torch.manual_seed(0))")
    return notes


def expected_logits() -> list[float]:
    """What torch computes for ROW, in the peers venv (the same torch as ours)."""
    code = (
        "import json, sys, torch\n"
        "m = torch.jit.load(sys.argv[1]).eval()\n"
        "print(json.dumps(m(torch.tensor([json.loads(sys.argv[2])])).tolist()[0]))\n"
    )
    done = subprocess.run(
        [str(PEER_PYTHON), "-c", code, str(MODEL_FILE), json.dumps(ROW)],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(done.stdout))


# --- servers -------------------------------------------------------------------------


def ours_spec() -> base.ServerSpec:
    port = base.free_port()
    settings = {
        "model_name": "mlp",
        "flavor": "pytorch",
        "model_path": str(MODEL_FILE),
        "flavor_options": {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, FEATURES]}],
            "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
        },
        "host": "127.0.0.1",
        "port": port,
        "workers": 1,
    }
    env = dict(os.environ, **THREAD_ENV, DEPLOYER_SERVING_SETTINGS=json.dumps(settings))
    command = [str(base.OUR_PYTHON), "-m", "deployer.serving", "serve"]
    routes = ((PROTOCOL, "/invocations"),)
    return base.ServerSpec("ours", command, env, port, "/ping", (PROTOCOL,), routes=routes)


def peer_env() -> dict[str, str]:
    env = dict(os.environ, **THREAD_ENV, MODEL_PATH=str(MODEL_FILE))
    env["PATH"] = f"{PEERS_VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(PEERS_VENV)
    env["BENTOML_DO_NOT_TRACK"] = "True"
    return env


def bentoml_spec() -> base.ServerSpec:
    port = base.free_port()
    command = [
        str(PEERS_VENV / "bin" / "bentoml"),
        "serve",
        "bentoml_service:MLP",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    routes = ((PROTOCOL, "/predict"),)
    return base.ServerSpec(
        "bentoml", command, peer_env(), port, "/readyz", (PROTOCOL,), HERE / "peers", routes
    )


def litserve_spec() -> base.ServerSpec:
    port = base.free_port()
    command = [str(PEER_PYTHON), str(HERE / "peers" / "litserve_server.py"), str(port)]
    routes = ((PROTOCOL, "/predict"),)
    return base.ServerSpec(
        "litserve", command, peer_env(), port, "/health", (PROTOCOL,), HERE / "peers", routes
    )


BUILDERS = {"ours": ours_spec, "bentoml": bentoml_spec, "litserve": litserve_spec}
BODIES = {
    "ours": {"instances": [ROW]},
    "bentoml": {"x": [ROW]},
    "litserve": {"x": ROW},
}


def logits_of(server: str, answer: Any) -> list[float]:
    """The logits of the one row in ``server``'s answer."""
    if server == "ours":
        prediction = answer["predictions"][0]
        return list(prediction["logits"] if isinstance(prediction, dict) else prediction)
    if server == "bentoml":
        return list(answer[0])
    return list(answer["output"])


def verify(spec: base.ServerSpec, body_file: Path, expected: list[float]) -> None:
    """The server's logits for ROW must be torch's, to 1e-4."""
    url = spec.url(spec.route(PROTOCOL))
    try:
        answer = base.post_json(url, body_file.read_bytes())
        logits = logits_of(spec.name, answer)
    except (OSError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise RuntimeError(f"{spec.name} did not predict on {url}: {exc}") from exc
    close = len(logits) == len(expected) and all(
        abs(a - b) <= 1e-4 for a, b in zip(logits, expected, strict=True)
    )
    if not close:
        raise RuntimeError(f"{spec.name} answered {logits}, expected {expected}")
    print(f"  {spec.name} {spec.route(PROTOCOL)} -> {json.dumps(answer)[:100]}", flush=True)


def benchmark_server(
    spec: base.ServerSpec, plan: base.Plan, expected: list[float]
) -> list[base.Point]:
    """Start one server, verify, warm up, and measure every concurrency."""
    points: list[base.Point] = []
    with base.running(spec, plan.pin, plan.startup_timeout_s) as process:
        verify(spec, plan.bodies[PROTOCOL], expected)
        url = spec.url(spec.route(PROTOCOL))
        base.run_wrk(base.wrk_command(url, plan.bodies[PROTOCOL], 8, plan.warmup_s, plan.pin))
        for concurrency in plan.concurrency:
            points += base.measure_undisturbed(spec, process.pid, PROTOCOL, concurrency, plan)
    return points


# --- reporting -----------------------------------------------------------------------


def table(run: base.Run, servers: list[str]) -> str:
    """req/s, p50 and p99 of every server at every concurrency, ratios against ours."""
    peers = [s for s in servers if s != "ours"]
    header = ["c", *(f"{s} req/s" for s in servers)]
    header += [f"ours/{p} req/s" for p in peers]
    header += [f"{s} p50 ms" for s in servers] + [f"{s} p99 ms" for s in servers]
    header += ["errors"]
    rows = []
    for concurrency in run.settings["concurrency"]:
        summaries = {s: run.summary(s, PROTOCOL, concurrency) for s in servers}
        if any(v is None for v in summaries.values()):
            continue
        got = {s: v for s, v in summaries.items() if v is not None}
        ours = got.get("ours")
        row = [str(concurrency), *(base.rps_cell(got[s]) for s in servers)]
        row += [
            base.ratio(ours.median.ok_rps, got[p].median.ok_rps) if ours else "n/a" for p in peers
        ]
        row += [f"{got[s].median.p50_ms:.2f}" for s in servers]
        row += [f"{got[s].median.p99_ms:.2f}" for s in servers]
        row += [" / ".join(base.errors_cell(got[s]) for s in servers)]
        rows.append(row)
    return base.markdown_table(header, rows)


def verdict(run: base.Run, servers: list[str]) -> str:
    """Issue 16's target at c=32: more req/s than every peer, p99 no worse, no errors."""
    ours = run.summary("ours", PROTOCOL, TARGET_CONCURRENCY)
    if ours is None:
        return f"not measured (needs ours at c={TARGET_CONCURRENCY})"
    parts, met = [], ours.errors == 0
    for peer in (s for s in servers if s != "ours"):
        theirs = run.summary(peer, PROTOCOL, TARGET_CONCURRENCY)
        if theirs is None:
            parts.append(f"{peer} not measured")
            met = False
            continue
        a, b = ours.median, theirs.median
        met = met and a.ok_rps > b.ok_rps and a.p99_ms <= b.p99_ms
        parts.append(
            f"vs {peer} {a.ok_rps:,.0f} / {b.ok_rps:,.0f} req/s "
            f"({base.ratio(a.ok_rps, b.ok_rps)}), p99 {a.p99_ms:.2f} / {b.p99_ms:.2f} ms"
        )
    return f"{'MET' if met else 'NOT MET'} at c={TARGET_CONCURRENCY}: " + "; ".join(parts)


def render_markdown(run: base.Run, servers: list[str]) -> str:
    m, s = run.machine, run.settings
    lines = [
        f"Command: `{run.command}`",
        "",
        f"- Machine: {m['cores']} cores ({m['cpu']}), Linux {m['kernel']}, Python "
        f"{m['python']}, {m['wrk']}; load average at start {m['loadavg_at_start']}",
        f"- {s['duration']} s per point after a {s['warmup']} s warm-up, {s['rounds']} rounds "
        f"(order rotated); runs where other processes took more than {s['max_other_cpu']:g}% "
        "of the server's core are retried and left out (serving.py's rule)",
    ]
    for side, versions in run.versions.items():
        listed = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        lines.append(f"- {side} venv: {listed}")
    lines += [f"- {note}" for note in run.notes]
    lines += ["", table(run, servers), "", f"Target (issue 16): {verdict(run, servers)}"]
    return "\n".join(lines) + "\n"


# --- main ----------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per point (10)")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[1, 8, 32],
        help="comma-separated connection counts (1,8,32)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="repeat everything N times (3)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds (3)")
    parser.add_argument("--max-other-cpu", type=float, default=10.0, help="see serving.py (10)")
    parser.add_argument("--retries", type=int, default=2, help="see serving.py (2)")
    parser.add_argument("--quiet-wait", type=float, default=60.0, help="see serving.py (60)")
    parser.add_argument("--servers", default=",".join(SERVERS), help="which servers (all)")
    parser.add_argument("--skip-setup", action="store_true", help="reuse venv and model")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds (180)")
    parser.add_argument("--json", type=Path, help="write every run and the facts here")
    parser.add_argument("--markdown", type=Path, default=WORK / "torch-serving.md")
    args = parser.parse_args(argv)
    unknown = set(args.servers.split(",")) - set(BUILDERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install wrk util-linux)")
    notes = [] if args.skip_setup else ensure_setup()
    if not MODEL_FILE.exists():
        raise SystemExit(f"no model at {MODEL_FILE}: run without --skip-setup once")
    expected = expected_logits()
    servers = args.servers.split(",")
    bodies = {}
    for server in servers:
        path = WORK / f"body-{server}.json"
        path.write_text(json.dumps(BODIES[server]))
        bodies[server] = path
    pin = (os.cpu_count() or 1) >= 2
    run = base.Run(
        command=" ".join([".venv/bin/python", "benchmarks/torch_serving.py", *argv]),
        machine=base.machine_facts(),
        versions={
            "ours": base.venv_versions(base.OUR_PYTHON, VERSIONS),
            "peers": base.venv_versions(PEER_PYTHON, VERSIONS),
        },
        settings={
            "duration": args.duration,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "max_other_cpu": args.max_other_cpu,
            "retries": args.retries,
            "quiet_wait": args.quiet_wait,
            "pinned": pin,
        },
        notes=notes,
    )
    for number in range(args.rounds):
        order = servers[number % len(servers) :] + servers[: number % len(servers)]
        print(f"round {number + 1}/{args.rounds}: {', '.join(order)}", flush=True)
        for name in order:
            plan = base.Plan(
                concurrency=args.concurrency,
                duration_s=args.duration,
                warmup_s=args.warmup,
                pin=pin,
                round=number,
                bodies={PROTOCOL: bodies[name]},
                startup_timeout_s=args.startup_timeout,
                max_other_cpu=args.max_other_cpu,
                retries=args.retries,
                quiet_wait_s=args.quiet_wait,
            )
            spec = BUILDERS[name]()
            print(f"{name}: {' '.join(spec.command)}", flush=True)
            try:
                run.points += benchmark_server(spec, plan, expected)
            except RuntimeError as exc:
                print(f"  {name} FAILED: {exc}", flush=True)
                run.notes.append(f"{name} failed in round {number + 1}: {str(exc)[:1500]}")
    markdown = render_markdown(run, servers)
    print("\n" + markdown)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(markdown)
    if args.json:
        args.json.write_text(json.dumps(asdict(run), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
