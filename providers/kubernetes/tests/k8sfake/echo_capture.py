"""What ``EchoRuntime`` runs for a capture reader Job's pod: the REAL
``python -m deployer.serving.capture_dump`` (a subprocess of this interpreter), its
``--folder`` the claim's host folder; stdout and stderr in one log, as the kubelet keeps it.
The fake cannot make the mount read-only: the dump only reads, and a test checks the Job
asks for ``readOnly``."""

from __future__ import annotations

import subprocess
import sys

from k8sfake.echo_batch import host_path

MODULE = ["python", "-m", "deployer.serving.capture_dump"]


def run(argv: list[str], mounts: list[tuple[str, str, bool]]) -> tuple[int, str]:
    """(exit code, output) of the dump's command line ``argv``."""
    args = list(argv[3:])
    if "--folder" in args:
        at = args.index("--folder") + 1
        try:
            args[at] = str(host_path(args[at], mounts))
        except FileNotFoundError:  # not on a volume: the image's own (empty) file system
            args[at] = "/nonexistent" + args[at]
    result = subprocess.run(
        [sys.executable, "-m", "deployer.serving.capture_dump", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout
