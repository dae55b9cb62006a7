"""What ``EchoRuntime`` runs for a batch Job's pod: a stand-in for the image's batch runner
(``python -m deployer.serving.batch_runner``, same command line), over the pod's volumes
on this machine. CSV only: every row predicted 0, the ``--keep`` columns first; a row with
a cell ``bad`` fails (the runner's failure line on stderr, exit 1)."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

MODULE = ["python", "-m", "deployer.serving.batch_runner"]


def host_path(path: str, mounts: list[tuple[str, str, bool]]) -> Path:
    """Where ``path`` inside the pod is on this machine (the deepest mount holding it)."""
    for folder, inside, _ in sorted(mounts, key=lambda m: -len(m[1])):
        if path == inside or path.startswith(inside.rstrip("/") + "/"):
            return Path(folder) / path[len(inside) :].lstrip("/")
    raise FileNotFoundError(path)


def run(argv: list[str], mounts: list[tuple[str, str, bool]]) -> tuple[int, str]:
    """(exit code, output) of the runner's command line ``argv``."""
    if argv[:3] != MODULE:
        return 127, f"exec: {argv[:1]}: not the batch runner\n"
    parser = argparse.ArgumentParser(exit_on_error=False)
    for name in ("--input", "--output", "--format", "--keep", "--label", "--columns"):
        parser.add_argument(name)
    parser.add_argument("--rows-per-batch", type=int, default=1000)
    parser.add_argument("--shard-index", type=int, default=0)
    parser.add_argument("--shard-count", type=int, default=1)
    args = parser.parse_args(argv[3:])

    source, sink = host_path(args.input, mounts), host_path(args.output, mounts)
    if not source.exists():
        return 2, json.dumps({"error": f"--input {args.input}: no such file or folder"}) + "\n"
    files = sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() else [source]
    mine = files[args.shard_index :: args.shard_count]
    sink.mkdir(parents=True, exist_ok=True)
    keep = [k for k in (args.keep or "").split(",") if k]
    out, failed = io.StringIO(), 0
    for file in mine:
        with file.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        bad = [n for n, row in enumerate(rows) if "bad" in row.values()]
        with (sink / file.name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*keep, "prediction"])
            for n, row in enumerate(rows):
                if n not in bad:
                    writer.writerow([*(row[k] for k in keep), 0])
        if bad:  # the runner's failure line (stderr), then its per-file line (stdout)
            failed += len(bad)
            rows_text = ",".join(str(n) for n in bad)
            line = {"file": str(file), "rows": rows_text, "error": "could not convert 'bad'"}
            out.write(json.dumps(line) + "\n")
        counts = {
            "event": "file",
            "input": str(file),
            "output": str(sink / file.name),
            "rows": len(rows),
            "scored": len(rows) - len(bad),
            "failed": len(bad),
            "skipped": False,
            "failures": 1 if bad else 0,
        }
        out.write(json.dumps(counts) + "\n")
    return (1 if failed else 0), out.getvalue()
