"""Side-by-side PyTorch serving benchmark: our model server vs BentoML, LitServe and TorchServe
(issue 16).

    .venv/bin/python benchmarks/torch_serving.py [--model mlp|text] [--duration 10]
        [--concurrency 1,8,32] [--rounds 3] [--servers ours,bentoml,litserve,torchserve]
        [--torchserve-logs quiet|default] [--skip-setup] [--json out.json]

Two models (``--model``), each loaded by every server from the same file:

* ``mlp`` (default): a TorchScript 3-layer MLP (benchmarks/peers/torch_model.py, 64 features
  in, 10 logits out). Ours: ``POST /invocations`` ``{"instances": [[64 floats]]}``; BentoML:
  ``POST /predict`` ``{"x": [[64 floats]]}`` (``@bentoml.api(batchable=True)``); LitServe:
  ``POST /predict`` ``{"x": [64 floats]}`` (``max_batch_size=64``, 1 ms timeout); TorchServe:
  ``POST /predictions/mlp`` ``{"x": [64 floats]}`` (its BaseHandler loading the TorchScript
  file, ``batchSize`` 64, ``maxBatchDelay`` 1 ms).
* ``text``: a BERT-mini-sized Hugging Face text classifier (peers/text_model.py: 4 layers,
  hidden 256, random weights from a seed, saved with ``save_pretrained``), served as a
  text-classification pipeline. Ours: ``{"instances": ["a sentence"]}``; BentoML
  ``{"texts": ["a sentence"]}``; LitServe and TorchServe ``{"text": "a sentence"}``; each peer
  runs a batch in one pipeline call (``batch_size=len(batch)``), as ours does.

TorchServe (Java 17+ needed; its model store, config and readiness are in torchserve_peer.py)
runs its Java front end and one Python worker, both pinned with the rest of its tree.

Every server runs one worker process and one torch thread (``OMP_NUM_THREADS=1``), pinned with
its whole process tree to core 0 while wrk runs on core 1, one item per request. Before
measuring, each server's answer must equal what torch (or the pipeline) computes directly.
The load loop, the CPU accounting and the disturbed-run rule are serving.py's: see its
docstring and benchmarks/README.md.

Setup (skipped by ``--skip-setup``): the peers venv benchmarks/.peers/torch-venv gets
torch==2.13.0 (the CPU wheel), BentoML, LitServe, TorchServe with torch-model-archiver, and
our venv's transformers version; the models are written to benchmarks/.work/torch/. Our venv
needs torch==2.13.0 (and transformers for ``--model text``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import serving as base
import torchserve_peer

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
WORK = base.WORK / "torch"
PEERS_VENV = HERE / ".peers" / "torch-venv"
PEER_PYTHON = PEERS_VENV / "bin" / "python"
FEATURES = 64
ROW = [round((i % 7) / 7 - 0.4, 4) for i in range(FEATURES)]
TEXT = "the movie was very good and i love it"
PEER_REQUIREMENTS = (
    "torch==2.13.0", "bentoml==1.4.40", "litserve==0.2.19", *torchserve_peer.REQUIREMENTS,
)  # fmt: skip
VERSIONS = (
    "deployer", "torch", "transformers", "tokenizers", "numpy", "bentoml", "litserve",
    "torchserve", "uvicorn", "fastapi",
)  # fmt: skip
SERVERS = ("ours", "bentoml", "litserve", "torchserve")
PROTOCOL = "json"  # each server's own JSON route, one item per request
TARGET_CONCURRENCY = 32  # issue 16: ahead of every peer in req/s here, p99 no worse
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@dataclass(frozen=True)
class Suite:
    """One model served by every server: how to make it, call it and check its answers."""

    name: str
    model: Path  # the file or folder every server loads
    make: str  # the script in peers/ that writes ``model`` (run in the peers venv)
    ours: dict[str, Any]  # our serving settings besides host, port and workers
    bodies: dict[str, Any]  # server: the request body (one item)
    services: dict[str, list[str]]  # peer: its command after the venv's bin/ (PORT for port)
    torchserve_handler: str  # TorchServe's handler in peers/
    reference: str  # Python run in the peers venv that prints the expected answer as JSON
    answer: Callable[[str, Any], Any]  # (server, its JSON answer) -> comparable value


def peer_commands(bento_service: str, litserve_script: str) -> dict[str, list[str]]:
    """Each peer's command (after the peers venv's bin/; the port is appended)."""
    return {
        "bentoml": ["bentoml", "serve", bento_service, "--host", "127.0.0.1", "--port"],
        "litserve": ["python", str(PEERS / litserve_script)],
    }


def _logits(server: str, answer: Any) -> Any:
    if server == "ours":
        prediction = answer["predictions"][0]
        return prediction["logits"] if isinstance(prediction, dict) else prediction
    if server == "torchserve":
        return answer
    return answer[0] if server == "bentoml" else answer["output"]


def _label_score(server: str, answer: Any) -> Any:
    found = {"ours": lambda a: a["predictions"][0], "bentoml": lambda a: a[0]}.get(
        server, lambda a: a
    )(answer)  # LitServe and TorchServe answer the object itself
    return [found["label"], found["score"]]


MLP = Suite(
    name="mlp",
    model=WORK / "mlp.pt",
    make="torch_model.py",
    ours={
        "flavor": "pytorch",
        "flavor_options": {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, FEATURES]}],
            "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
        },
    },
    bodies={
        "ours": {"instances": [ROW]},
        "bentoml": {"x": [ROW]},
        "litserve": {"x": ROW},
        "torchserve": {"x": ROW},
    },
    services=peer_commands("bentoml_service:MLP", "litserve_server.py"),
    torchserve_handler="torchserve_handler.py",
    reference=(
        "import json, sys, torch\n"
        "m = torch.jit.load(sys.argv[1]).eval()\n"
        f"print(json.dumps(m(torch.tensor([{ROW!r}])).tolist()[0]))\n"
    ),
    answer=_logits,
)
TEXT_SUITE = Suite(
    name="text",
    model=WORK / "text-classifier",
    make="text_model.py",
    ours={"flavor": "transformers", "flavor_options": {"task": "text-classification"}},
    bodies={
        "ours": {"instances": [TEXT]},
        "bentoml": {"texts": [TEXT]},
        "litserve": {"text": TEXT},
        "torchserve": {"text": TEXT},
    },
    services=peer_commands("bentoml_text_service:TextClassifier", "litserve_text_server.py"),
    torchserve_handler="torchserve_text_handler.py",
    reference=(
        "import json, sys, transformers\n"
        "p = transformers.pipeline('text-classification', model=sys.argv[1], device='cpu')\n"
        f"r = p({TEXT!r})[0]\n"
        "print(json.dumps([r['label'], r['score']]))\n"
    ),
    answer=_label_score,
)
SUITES = {s.name: s for s in (MLP, TEXT_SUITE)}


def ensure_setup(suite: Suite) -> list[str]:
    """The peers venv (with our venv's transformers) and the suite's model; returns notes."""
    if not PEER_PYTHON.exists():
        subprocess.run([str(base.OUR_PYTHON), "-m", "venv", str(PEERS_VENV)], check=True)
    ours = base.venv_versions(base.OUR_PYTHON, ("transformers", "tokenizers"))
    same = [f"{name}=={version}" for name, version in ours.items()]
    done = subprocess.run(
        [str(PEER_PYTHON), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS, *same],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"pip could not install the peers:\n{done.stdout[-3000:]}{done.stderr}")
    WORK.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(PEER_PYTHON), str(PEERS / suite.make), str(suite.model)], check=True)
    return [f"model: {suite.model.name} written by peers/{suite.make} (torch.manual_seed(0))"]


def expected_answer(suite: Suite) -> Any:
    """What torch (or the pipeline) answers for the suite's item, in the peers venv."""
    done = subprocess.run(
        [str(PEER_PYTHON), "-c", suite.reference, str(suite.model)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, **THREAD_ENV, HF_HUB_OFFLINE="1"),
    )
    return json.loads(done.stdout)


# --- servers -------------------------------------------------------------------------


def ours_spec(suite: Suite) -> base.ServerSpec:
    port = base.free_port()
    settings = {
        "model_name": suite.name,
        "model_path": str(suite.model),
        **suite.ours,
        "host": "127.0.0.1",
        "port": port,
        "workers": 1,
    }
    env = dict(os.environ, **THREAD_ENV, DEPLOYER_SERVING_SETTINGS=json.dumps(settings))
    command = [str(base.OUR_PYTHON), "-m", "deployer.serving", "serve"]
    routes = ((PROTOCOL, "/invocations"),)
    return base.ServerSpec("ours", command, env, port, "/ping", (PROTOCOL,), routes=routes)


def peers_env(suite: Suite) -> dict[str, str]:
    """The environment of an activated peers venv, one torch thread, no hub."""
    env = dict(os.environ, **THREAD_ENV, MODEL_PATH=str(suite.model), HF_HUB_OFFLINE="1")
    env["PATH"] = f"{PEERS_VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(PEERS_VENV)
    env["BENTOML_DO_NOT_TRACK"] = "True"
    return env


def peer_spec(name: str, suite: Suite) -> base.ServerSpec:
    """A peer's server for ``suite``, from the peers venv, in benchmarks/peers/."""
    port = base.free_port()
    program, *args = suite.services[name]
    command = [str(PEERS_VENV / "bin" / program), *args, str(port)]
    ready = "/readyz" if name == "bentoml" else "/health"
    routes = ((PROTOCOL, "/predict"),)
    return base.ServerSpec(name, command, peers_env(suite), port, ready, (PROTOCOL,), PEERS, routes)


# After the start, before verifying: wait for what the readiness route does not cover.
AfterStart = Callable[[float], str]


def server_spec(
    name: str, suite: Suite, quiet_logs: bool = True
) -> tuple[base.ServerSpec, AfterStart | None]:
    """The server's spec, and what to wait for once its readiness route answers."""
    if name == "ours":
        return ours_spec(suite), None
    if name == "torchserve":
        handler = PEERS / suite.torchserve_handler
        folder = WORK / "torchserve" / suite.name
        started = torchserve_peer.torchserve(
            PEERS_VENV, suite.name, suite.model, handler, folder, peers_env(suite), quiet_logs
        )
        return started.spec, started.wait_workers
    return peer_spec(name, suite), None


def close(a: Any, b: Any) -> bool:
    """Equal, numbers to 1e-4 (lists element-wise)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-4
    return bool(a == b)


def verify(spec: base.ServerSpec, suite: Suite, body_file: Path, expected: Any) -> None:
    """The server's answer for the suite's item must be what torch computes."""
    url = spec.url(spec.route(PROTOCOL))
    try:
        answer = base.post_json(url, body_file.read_bytes())
        got = suite.answer(spec.name, answer)
    except (OSError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise RuntimeError(f"{spec.name} did not predict on {url}: {exc}") from exc
    if not close(got, expected):
        raise RuntimeError(f"{spec.name} answered {got}, expected {expected}")
    print(f"  {spec.name} {spec.route(PROTOCOL)} -> {json.dumps(answer)[:100]}", flush=True)


def benchmark_server(
    spec: base.ServerSpec,
    suite: Suite,
    plan: base.Plan,
    expected: Any,
    after_start: AfterStart | None = None,
) -> list[base.Point]:
    """Start one server, verify, warm up, and measure every concurrency."""
    points: list[base.Point] = []
    with base.running(spec, plan.pin, plan.startup_timeout_s) as process:
        if after_start is not None:
            print(f"  {spec.name}: {after_start(plan.startup_timeout_s)}", flush=True)
        verify(spec, suite, plan.bodies[PROTOCOL], expected)
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
    parser.add_argument("--model", choices=sorted(SUITES), default="mlp", help="mlp or text")
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
    parser.add_argument(
        "--torchserve-logs",
        choices=("quiet", "default"),
        default="quiet",
        help="TorchServe logging: warnings only, async (quiet) or its built-in config",
    )
    parser.add_argument("--json", type=Path, help="write every run and the facts here")
    parser.add_argument("--markdown", type=Path, help="default: .work/torch/<model>-serving.md")
    args = parser.parse_args(argv)
    unknown = set(args.servers.split(",")) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install wrk util-linux)")
    suite = SUITES[args.model]
    notes = [] if args.skip_setup else ensure_setup(suite)
    servers = args.servers.split(",")
    if "torchserve" in servers:
        problem = torchserve_peer.java_problem()
        if problem:  # left out, so the other servers' table still has every row
            servers.remove("torchserve")
            notes.append(f"torchserve left out: {problem}")
        else:
            notes.append(torchserve_peer.describe(args.torchserve_logs == "quiet"))
    if not suite.model.exists():
        raise SystemExit(f"no model at {suite.model}: run without --skip-setup once")
    expected = expected_answer(suite)
    bodies = {}
    for server in servers:
        path = WORK / f"body-{suite.name}-{server}.json"
        path.write_text(json.dumps(suite.bodies[server]))
        bodies[server] = path
    pin = (os.cpu_count() or 1) >= 2
    run = base.Run(
        command=" ".join([".venv/bin/python", "benchmarks/torch_serving.py", *argv]),
        machine=base.machine_facts(),
        versions={
            "ours": base.venv_versions(base.OUR_PYTHON, VERSIONS),
            "peers": base.venv_versions(PEER_PYTHON, VERSIONS),
        },
        settings=base.run_settings(args, pin),
        notes=notes,
    )
    for number in range(args.rounds):
        order = servers[number % len(servers) :] + servers[: number % len(servers)]
        print(f"round {number + 1}/{args.rounds}: {', '.join(order)}", flush=True)
        for name in order:
            plan = base.round_plan(args, pin, number, {PROTOCOL: bodies[name]})
            try:
                spec, after_start = server_spec(name, suite, args.torchserve_logs == "quiet")
                print(f"{name}: {' '.join(spec.command)}", flush=True)
                run.points += benchmark_server(spec, suite, plan, expected, after_start)
            except RuntimeError as exc:
                print(f"  {name} FAILED: {exc}", flush=True)
                run.notes.append(f"{name} failed in round {number + 1}: {str(exc)[:1500]}")
    markdown = render_markdown(run, servers)
    print("\n" + markdown)
    out = args.markdown or WORK / f"{suite.name}-serving.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown)
    if args.json:
        args.json.write_text(json.dumps(asdict(run), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
