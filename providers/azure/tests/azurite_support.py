"""Azurite, Microsoft's own Azure Storage emulator, for the ``az://`` data URI tests.

``azurite_blob()`` installs Azurite with npm once into ``.venv-clients/azurite-<version>``
(a later run installs nothing), starts its Blob service on a free loopback port with its
data in a temporary folder, yields a connection string for its well-known development
account, and stops it. Without node/npm (or the registry) the tests skip, unless
DEPLOYER_REQUIRE_CLIENTS=1 (CI).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
AZURITE = "azurite@3.35.0"
FOLDER = REPO / ".venv-clients" / AZURITE.replace("@", "-")
INSTALL_TIMEOUT_S = 600.0
START_TIMEOUT_S = 60.0
# Azurite's documented development account (the same for everyone; not a secret).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _unavailable(message: str) -> None:
    if os.environ.get("DEPLOYER_REQUIRE_CLIENTS") == "1":
        pytest.fail(f"{message} (DEPLOYER_REQUIRE_CLIENTS=1)")
    pytest.skip(message)


def azurite_command() -> Path:
    """The ``azurite-blob`` script, installed now if it is not cached."""
    script = FOLDER / "node_modules" / ".bin" / "azurite-blob"
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm is not installed: cannot install Azurite")
    FOLDER.mkdir(parents=True, exist_ok=True)
    with open(FOLDER.parent / f"{FOLDER.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time
        if not (FOLDER / ".complete").exists():
            command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(FOLDER), AZURITE]
            try:
                result = subprocess.run(
                    command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
                )
            except subprocess.TimeoutExpired:
                _unavailable(f"npm install {AZURITE} took over {INSTALL_TIMEOUT_S:.0f}s")
            if result.returncode != 0 or not script.exists():
                _unavailable(f"npm install {AZURITE} failed:\n{result.stderr[-2000:]}")
            (FOLDER / ".complete").write_text(AZURITE + "\n")
    return script


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Azurite exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    pytest.fail(f"Azurite did not listen on {port} within {START_TIMEOUT_S}s:\n{log.read_text()}")


@contextlib.contextmanager
def azurite_blob() -> Iterator[str]:
    """A running Azurite Blob service; yields its connection string."""
    script = azurite_command()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="azurite-") as data:
        log = Path(data) / "azurite.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    str(script),
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    str(port),
                    "--location",
                    str(Path(data) / "store"),
                    "--skipApiVersionCheck",
                    "--disableProductStyleUrl",
                    "--silent",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            _wait_listening(process, port, log)
            yield (
                f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
            )
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
