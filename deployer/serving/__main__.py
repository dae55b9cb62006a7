"""The image entrypoint: ``python -m deployer.serving [serve]``.

SageMaker starts containers as ``docker run IMAGE serve``; any other platform runs the
image as built. Settings come from DEPLOYER_SERVING_CONFIG (default
/opt/deployer/serving.json) or DEPLOYER_SERVING_SETTINGS.
"""

from __future__ import annotations

import sys

from deployer.serving.server import run
from deployer.serving.settings import ServingSettings


def main(argv: list[str]) -> int:
    if argv and argv[0] != "serve":
        print(f"usage: python -m deployer.serving [serve]; unknown argument {argv[0]!r}", file=sys.stderr)
        return 2
    try:
        settings = ServingSettings.from_environment()
    except (OSError, ValueError) as exc:
        print(f"cannot read serving settings: {exc}", file=sys.stderr)
        return 2
    run(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
