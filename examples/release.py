"""A release script using deployer's Python API: validate, build, check, push, report.

    python examples/release.py examples/iris/deployer.yaml --to local [--strategy canary:10]

Exits 0 when every target is healthy, 1 otherwise; prints the release as JSON for the
log and keeps the journal under .deployer/journal/ next to deployer.yaml.
"""

from __future__ import annotations

import argparse
import json
import sys

from deployer import DeployerError, Project


def release(project_file: str, targets: list[str], strategy: str, on_failure: str) -> int:
    project = Project.load(project_file)
    report = project.validate()
    print(f"releasing {report.project} (model sha256 {report.model_sha256[:12]})", file=sys.stderr)
    image = project.build(progress=lambda line: print(line, file=sys.stderr))
    check = project.check(image.ref)
    if not check.passed:
        failed = [f"{r.contract} ({r.mode}): {r.detail}" for r in check.results if not r.passed]
        print("contract check failed:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    result = project.push(
        targets,
        strategy=strategy,
        on_failure=on_failure,  # type: ignore[arg-type]
        events=lambda target, message: print(f"[{target}] {message}", file=sys.stderr),
    )
    print(json.dumps(result.to_dict(), indent=2, default=str))
    for target in result.targets:
        print(f"{target.target}: {target.outcome} {target.live_version or ''}", file=sys.stderr)
    return 0 if result.ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project_file")
    parser.add_argument("--to", required=True, help="comma-separated target names")
    parser.add_argument("--strategy", default="all-at-once")
    parser.add_argument("--on-failure", default="rollback", choices=["rollback", "keep"])
    args = parser.parse_args()
    try:
        return release(args.project_file, args.to.split(","), args.strategy, args.on_failure)
    except DeployerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
