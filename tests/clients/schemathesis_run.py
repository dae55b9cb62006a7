"""Run schemathesis's CLI in this process, behind the loopback guard (run in its own venv
by the tests).

``python schemathesis_run.py ARGS...`` runs ``st ARGS...`` (the test chooses the spec,
URL, checks, phases and report paths) and prints one JSON object: schemathesis's exit
code and version, and every non-loopback connection refused. The results are in the
reports the arguments ask for (JUnit XML, JSON); the test reads them.
"""

from __future__ import annotations

import json
import sys

from loopback_guard import BLOCKED, install  # this folder is sys.path[0]

install("schemathesis_run.py")

from importlib.metadata import version  # noqa: E402

from schemathesis.cli import schemathesis  # noqa: E402


def main(args: list[str]) -> dict[str, object]:
    try:
        schemathesis.main(args, prog_name="st", standalone_mode=False)
        code: object = 0
    except SystemExit as exc:  # the run's verdict, not a crash
        code = exc.code
    return {"exit_code": code, "version": version("schemathesis"), "blocked": BLOCKED}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
