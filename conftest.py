"""Root conftest: shared Docker and registry fixtures for every test folder
(tests/ and providers/*/tests/). See tests/docker_support.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))

pytest_plugins = ["docker_support"]
