"""The image entrypoint: ``python -m deployer.serving [serve]``.

SageMaker starts containers as ``docker run IMAGE serve``; any other platform runs the
image as built; ``docker run IMAGE batch --input ... --output ...`` runs the batch
runner (deployer.serving.batch_runner) instead of the server. Settings come from
DEPLOYER_SERVING_CONFIG (default /opt/deployer/serving.json) or DEPLOYER_SERVING_SETTINGS.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from deployer.serving import observing
from deployer.serving.artifacts import artifact_notices
from deployer.serving.server import run
from deployer.serving.settings import ServingSettings


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """SIGTERM is how platforms stop the container: exit 0, not "killed by signal".

    uvicorn drains requests on SIGTERM, then re-raises the signal with the handler that
    was installed before it started: this one, so the process ends with status 0.
    """
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "batch":  # docker run IMAGE batch --input ... (batch_runner)
        from deployer.serving.batch_runner import main as batch

        return batch(argv[1:])
    if argv and argv[0] != "serve":
        print(
            f"usage: python -m deployer.serving [serve | batch ...]; unknown argument {argv[0]!r}",
            file=sys.stderr,
        )
        return 2
    try:
        settings = ServingSettings.from_environment()
    except (OSError, ValueError) as exc:
        print(f"cannot read serving settings: {exc}", file=sys.stderr)
        return 2
    try:
        observing.check(settings, os.environ)
    except ValueError as exc:
        print(f"cannot start monitoring: {exc}", file=sys.stderr)
        return 2
    for notice in artifact_notices(settings.model_path):
        print(notice, file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    run(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
