"""The end-of-run check (tests/leftovers.py) fails a run that leaves a process, a thread
or a pending asyncio task behind, and passes one that cleans up. Each case runs a small
test file in its own pytest process (pytester), with the plugin loaded as the suite
loads it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
TESTS = Path(__file__).resolve().parent

LEAKS_A_PROCESS = """
import subprocess, sys
held = []
def test_starts_a_process():
    held.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]))
"""

STOPS_ITS_PROCESS = """
import subprocess, sys
def test_starts_and_stops_a_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    child.terminate()
    child.wait()
"""

LEAKS_A_THREAD = """
import threading
stop = threading.Event()
def test_starts_a_thread():
    threading.Thread(target=stop.wait, name="forgotten-server", daemon=True).start()
"""

LEAKS_A_PENDING_TASK = """
import asyncio
async def forever():
    await asyncio.Event().wait()
def test_closes_a_loop_with_a_task_pending():
    loop = asyncio.new_event_loop()
    loop.create_task(forever())
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
"""

SETS_A_VARIABLE_IN_A_TEST = """
import os
def test_sets_a_variable():
    os.environ["DEPLOYER_LEAKED_BY_A_TEST"] = "1"
def test_runs_after_it():
    assert "DEPLOYER_LEAKED_BY_A_TEST" not in os.environ
"""


@pytest.fixture(autouse=True)
def _strict_and_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner runs fail on leftovers and give a process one second to exit."""
    monkeypatch.setenv("DEPLOYER_LEFTOVERS_SETTLE", "1")
    monkeypatch.delenv("DEPLOYER_LEFTOVERS", raising=False)


def run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makeconftest(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\npytest_plugins = ['leftovers']\n"
    )
    pytester.makepyfile(source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")


def test_a_process_left_running_fails_the_run(pytester: pytest.Pytester) -> None:
    result = run(pytester, LEAKS_A_PROCESS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*left behind by the test run*", "process *time.sleep(120)*"])
    assert "1 passed" in result.stdout.str()


def test_a_run_that_stops_what_it_starts_passes(pytester: pytest.Pytester) -> None:
    result = run(pytester, STOPS_ITS_PROCESS)
    assert result.ret == pytest.ExitCode.OK
    assert "left behind" not in result.stdout.str()


def test_a_thread_left_running_fails_the_run(pytester: pytest.Pytester) -> None:
    result = run(pytester, LEAKS_A_THREAD)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*thread 'forgotten-server'*"])


def test_a_task_destroyed_while_pending_fails_the_run(pytester: pytest.Pytester) -> None:
    result = run(pytester, LEAKS_A_PENDING_TASK)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*asyncio: Task was destroyed but it is pending*"])


def test_a_variable_a_test_sets_is_undone_after_it(pytester: pytest.Pytester) -> None:
    result = run(pytester, SETS_A_VARIABLE_IN_A_TEST)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "2 passed" in result.stdout.str()
