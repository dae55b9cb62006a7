"""``python -m deployer_router serve router.yaml``: the built-in router, as the router
image runs it (no typer, no rich: only what ROUTER_REQUIREMENTS installs).

    python -m deployer_router serve router.yaml [--host H] [--port P] [--no-access-log]
        [--busy-poll | --no-busy-poll]
    python -m deployer_router validate router.yaml

Exit codes: 0 ok, 2 the manifest is invalid, 3 a provider plugin is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deployer.errors import DeployerError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployer_router")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the router")
    serve.add_argument("manifest", type=Path)
    serve.add_argument("--host", default=None, help="default: listen.host")
    serve.add_argument("--port", type=int, default=None, help="default: listen.port")
    serve.add_argument("--no-access-log", action="store_true")
    serve.add_argument(
        "--busy-poll",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="poll without sleeping while requests flow (default: busy_poll.enabled)",
    )
    serve.add_argument("--grace", type=float, default=20.0, help="seconds to drain on SIGTERM")
    check = commands.add_parser("validate", help="check a manifest")
    check.add_argument("manifest", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "validate":
            from deployer.router.manifest import load

            manifest = load(args.manifest)
            print(f"{args.manifest}: valid ({len(manifest.backends)} backends)")
            return 0
        from deployer_router.app import run

        run(
            args.manifest,
            host=args.host,
            port=args.port,
            access_log=False if args.no_access_log else None,
            busy_poll=args.busy_poll,
            grace=args.grace,
        )
    except DeployerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
