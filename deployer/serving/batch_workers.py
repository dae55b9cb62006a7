"""One file scored by several processes (``--workers N``): the runner forks N-1 copies
of itself once the model is loaded; process i scores the checkpoint parts i, i+N, ...
(each part its own file, written atomically, so they do not meet), then the first
process scores whatever is missing (a copy that failed: its parts) and assembles the
output, exactly as a resumed run does. Every process reads the whole file (so the
chunks and their errors are the same in each) and scores a part in N of it."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_processes(count: int, score: Callable[[tuple[int, int] | None], T]) -> T:
    """``score((i, count))`` in ``count`` processes (fork: the loaded model is shared),
    then ``score(None)`` here: the rest, and the result."""
    children: list[int] = []
    try:
        for index in range(1, count):
            pid = os.fork()
            if pid == 0:  # the copy: its parts, then gone (none of the parent's cleanup)
                code = 1
                try:
                    score((index, count))
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
        score((0, count))
    except BaseException:
        for pid in children:  # the parent failed (bad input, Ctrl-C): stop the copies
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        raise
    finally:
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return score(None)
