"""Root conftest: shared Docker and registry fixtures for every test folder
(tests/ and providers/*/tests/), and the check that the run leaves nothing behind.
See tests/docker_support.py and tests/leftovers.py; the test folders are on the import
path through pyproject's ``[tool.pytest.ini_options] pythonpath``."""

pytest_plugins = ["docker_support", "leftovers"]
