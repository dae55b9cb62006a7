"""``deployer batch`` over 1,000,000 rows of the iris model: in process and through the
image, against a bare in-process ``model.predict`` over the same batches.

    python benchmarks/batch_throughput.py [--rows 1000000] [--small-rows 100000]
        [--batch-size 1000] [--rounds 1] [--no-image] [--times N] [--json OUT]

Writes, under benchmarks/.work/batch/: the iris model (examples/iris/train.py: scaler +
logistic regression), a deployer.yaml with a local target, and ROWS (and SMALL_ROWS) rows
of iris-like features (the iris rows resampled with a little noise, an ``id`` column) as
CSV. Then times, for each round:

- bare: ``model.predict(X)`` over the batches of ``--batch-size`` rows, the rows read into
  numpy beforehand (not timed): the physical limit for this model; bare_part: the same
  over batches of one checkpoint part (about 50,000 rows), the batches the runner
  predicts in for a row-wise flavour such as scikit-learn;
- in process: ``Project.batch(None, csv, out, keep=["id"], in_process=True)`` end to end
  (loading the model, reading the CSV, shaping, predicting, writing the output with its
  checkpoint parts);
- image: ``Project.batch("local", ...)`` end to end (the image already built: starting the
  container, loading the model, the same runner code inside it);
- endpoint: ``Project.batch("local", ..., endpoint=True)`` end to end, the image pushed to
  the local target beforehand (not timed, as the build): the file read and shaped in this
  process, each part's features sent as .npy requests to the running deployment, which
  predicts (the image's model, already loaded: no start-up);
- *_fixed: the same over a 10-row file (the fixed cost: start-up and model load), and
  *_after_start the rows/s without it;
- runner process: the image's runner (``python -m deployer.serving.batch_runner``) as a
  fresh process on the host with pyarrow hidden: the image's code path without the
  container (start-up: Python, scikit-learn, the model);
- ``--times N``: in process and through the image once more, over the ROWS rows N times
  over in one file (``repeated``: e.g. 10,000,000 rows with N=10).

Prints one JSON document: rows/s of each (best of the rounds) and the ratios to bare (the
issue's targets: 0.80 in process, 0.50 through the image: the job or the endpoint); and the
peak RSS of a child process scoring SMALL_ROWS and ROWS in process (memory flat: about
equal). The image runs need Docker (run under ``flock /tmp/docker.lock`` on a shared
machine; the image's base is ``DEPLOYER_BASE_IMAGE``, else ``image.base``'s default); the
local deployment and the image tag are removed after.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / ".work" / "batch"


def write_inputs(folder: Path, rows: int, small: int) -> dict[str, Path]:
    """The model, deployer.yaml and the two CSV files in ``folder`` (kept between runs)."""
    from sklearn.datasets import load_iris

    sys.path.insert(0, str(REPO / "examples" / "iris"))
    from train import train  # examples/iris/train.py

    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "model.joblib").exists():
        train(folder / "model.joblib")
    (folder / "deployer.yaml").write_text(
        "name: batch-bench\nmodel:\n  path: model.joblib\n"
        "targets:\n  local:\n    provider: local\n    port: 18377\n"
    )
    features = load_iris(return_X_y=True)[0]
    paths = {}
    for name, count in (("tiny", 10), ("small", small), ("large", rows)):
        path = folder / f"{name}-{count}.csv"
        paths[name] = path
        if path.exists():
            continue
        generator = np.random.default_rng(count)
        picked = features[generator.integers(0, len(features), count)]
        noisy = np.round(picked + generator.normal(scale=0.05, size=picked.shape), 3)
        with open(path, "w") as f:
            f.write("id,sepal_length,sepal_width,petal_length,petal_width\n")
            for start in range(0, count, 100_000):
                block = noisy[start : start + 100_000]
                f.writelines(
                    f"{start + i},{r[0]!r},{r[1]!r},{r[2]!r},{r[3]!r}\n"
                    for i, r in enumerate(block.tolist())
                )
    return paths


def bare(model: Any, path: Path, batch: int) -> float:
    """Seconds of model.predict over the file's rows in batches (rows read beforehand)."""
    x = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(1, 2, 3, 4))
    batches = [x[i : i + batch] for i in range(0, len(x), batch)]
    started = time.perf_counter()
    for rows in batches:
        model.predict(rows)
    return time.perf_counter() - started


def through(project: Any, to: str | None, path: Path, out: Path, endpoint: bool = False) -> float:
    """Seconds of Project.batch end to end (the output removed first: no resume)."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    job = project.batch(
        to, str(path), str(out) + "/", keep=["id"], in_process=to is None, endpoint=endpoint
    ).status
    seconds = time.perf_counter() - started
    assert job.complete, job
    return seconds


# The child's own high-water mark: /proc's VmHWM starts afresh at exec, while getrusage's
# ru_maxrss is inherited from the parent at fork (it would report the parent's peak).
PEAK = """
import sys
from deployer.api import Project
project = Project.load(sys.argv[1])
job = project.batch(None, sys.argv[2], sys.argv[3], keep=["id"], in_process=True).status
assert job.complete, job
print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""


def peak_rss_mb(folder: Path, path: Path) -> float:
    """Peak RSS (MB) of a fresh process scoring ``path`` in process."""
    out = folder / "peak-out"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-c", PEAK, str(folder / "deployer.yaml"), str(path), f"{out}/"]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1]) / 1024


# The image's runner without the container: a fresh process, pyarrow hidden (the image
# has none), the model and settings the image would get.
RUNNER = """
import sys
class NoPyarrow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pyarrow":
            raise ImportError("the serving image has no pyarrow")
sys.meta_path.insert(0, NoPyarrow())
from deployer.serving.batch_runner import main
sys.exit(main(sys.argv[1:]))
"""


def runner_process(project: Any, path: Path, out: Path) -> float:
    """Seconds of ``python -m deployer.serving.batch_runner`` (as in the image) here."""
    import os

    from deployer.serving.settings import SETTINGS_ENV

    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, SETTINGS_ENV: project.serving_settings().to_json()}
    command = [sys.executable, "-c", RUNNER, "--input", str(path), "--output", f"{out}/"]
    started = time.perf_counter()
    subprocess.run([*command, "--keep", "id"], check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-image", action="store_true")
    parser.add_argument(
        "--times", type=int, default=0, help="also score the large file N times over, once"
    )
    parser.add_argument("--json")
    args = parser.parse_args()

    import joblib

    from deployer.api import Project

    paths = write_inputs(WORK, args.rows, args.small_rows)
    text = (WORK / "deployer.yaml").read_text()
    (WORK / "deployer.yaml").write_text(text + f"batch:\n  rows_per_request: {args.batch_size}\n")
    project = Project.load(WORK / "deployer.yaml")
    model = joblib.load(WORK / "model.joblib")
    large = paths["large"]
    times: dict[str, list[float]] = {
        "bare": [],
        "bare_part": [],
        "in_process": [],
        "image": [],
        "in_process_fixed": [],
        "image_fixed": [],
        "endpoint": [],
        "endpoint_fixed": [],
        "runner_process": [],
        "runner_process_fixed": [],
    }
    part = max(1, min(50_000 // args.batch_size, 50)) * args.batch_size  # the runner's predict
    image = None if args.no_image else project.build()  # not timed: push would have built it
    if image is not None:  # not timed: --endpoint scores through what push deployed
        pushed = project.push(["local"])
        assert pushed.ok, pushed.targets[0].error
    for _ in range(args.rounds):
        times["bare"].append(bare(model, large, args.batch_size))
        times["bare_part"].append(bare(model, large, part))
        times["in_process"].append(through(project, None, large, WORK / "out-in-process"))
        tiny = paths["tiny"]
        times["in_process_fixed"].append(through(project, None, tiny, WORK / "out-in-process"))
        times["runner_process"].append(runner_process(project, large, WORK / "out-runner"))
        times["runner_process_fixed"].append(runner_process(project, tiny, WORK / "out-runner"))
        if not args.no_image:
            times["image"].append(through(project, "local", large, WORK / "out-image"))
            times["image_fixed"].append(through(project, "local", tiny, WORK / "out-image"))
            out = WORK / "out-endpoint"
            times["endpoint"].append(through(project, "local", large, out, endpoint=True))
            times["endpoint_fixed"].append(through(project, "local", tiny, out, endpoint=True))
    repeated: dict[str, Any] = {}
    if args.times > 1:  # a bigger input: the large file's rows N times over (made, not timed)
        path = WORK / f"large-{args.rows}-x{args.times}.csv"
        if not path.exists():
            with open(path, "wb") as out:
                for copy in range(args.times):
                    with open(large, "rb") as f:
                        if copy:
                            f.readline()
                        shutil.copyfileobj(f, out, 1 << 20)
        total = args.rows * args.times
        ways = [("in_process", None), ("runner_process", "")]
        ways += [] if args.no_image else [("image", "local"), ("endpoint", "local")]
        for name, to in ways:
            if to == "":
                seconds = runner_process(project, path, WORK / "out-runner")
            else:
                out = WORK / f"out-{name}"
                seconds = through(project, to, path, out, endpoint=name == "endpoint")
            fixed = min(times[f"{name}_fixed"])
            repeated[name] = {
                "seconds": round(seconds, 2),
                "rows_per_s": round(total / seconds),
                "rows_per_s_after_start": round(total / (seconds - fixed)),
            }
        repeated["rows"] = total
    if image is not None:  # leave no deployment and no image behind
        from deployer.providers import docker_client

        project.destroy(["local"])
        docker_client().images.remove(image.ref, noprune=True)
    best = {k: min(v) for k, v in times.items() if v}
    rate = {k: args.rows / v for k, v in best.items() if not k.endswith("_fixed")}
    for way in ("in_process", "image", "endpoint", "runner_process"):  # without the fixed cost
        if way in best:
            rate[way + "_after_start"] = args.rows / (best[way] - best[way + "_fixed"])
    result: dict[str, Any] = {
        "rows": args.rows,
        "batch_size": args.batch_size,
        "part_size": part,
        "rows_per_s": {k: round(v) for k, v in rate.items()},
        "seconds": {k: [round(s, 2) for s in v] for k, v in times.items() if v},
        "ratio_in_process": round(rate["in_process"] / rate["bare"], 3),
        "ratio_in_process_after_start": round(rate["in_process_after_start"] / rate["bare"], 3),
        "ratio_in_process_to_bare_part": round(rate["in_process"] / rate["bare_part"], 3),
        "ratio_runner_process": round(rate["runner_process"] / rate["bare"], 3),
        "ratio_runner_process_after_start": round(
            rate["runner_process_after_start"] / rate["bare"], 3
        ),
        "peak_rss_mb": {
            str(args.small_rows): round(peak_rss_mb(WORK, paths["small"]), 1),
            str(args.rows): round(peak_rss_mb(WORK, large), 1),
        },
    }
    if repeated:
        result["repeated"] = repeated
    if "image" in rate:
        result["ratio_image"] = round(rate["image"] / rate["bare"], 3)
        result["ratio_image_after_start"] = round(rate["image_after_start"] / rate["bare"], 3)
        result["ratio_image_to_bare_part"] = round(rate["image"] / rate["bare_part"], 3)
        result["ratio_endpoint"] = round(rate["endpoint"] / rate["bare"], 3)
        result["ratio_endpoint_after_start"] = round(rate["endpoint_after_start"] / rate["bare"], 3)
    document = json.dumps(result, indent=2)
    print(document)
    if args.json:
        Path(args.json).write_text(document + "\n")


if __name__ == "__main__":
    main()
