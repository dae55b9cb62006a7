"""Root conftest: shared Docker and registry fixtures for every test folder
(tests/ and providers/*/tests/), and the check that the run leaves nothing behind.
See tests/docker_support.py and tests/leftovers.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))

pytest_plugins = ["docker_support", "leftovers"]
