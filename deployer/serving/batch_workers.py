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
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployer.serving.batch_runner import BatchOptions, FileCounts, Scorer


def score_file_in_processes(
    scorer: Scorer,
    in_path: str,
    out_path: str,
    options: BatchOptions,
    on_chunk: Callable[[FileCounts], None] | None = None,
    chunk_shard: bool = False,
) -> FileCounts:
    """``score_file`` with ``options.workers`` processes (fork: the model is shared)."""
    from deployer.serving.batch_runner import score_file

    count = options.workers
    single = replace(options, workers=1)
    children: list[int] = []
    try:
        for index in range(1, count):
            pid = os.fork()
            if pid == 0:  # the copy: its parts, then gone (no cleanup of the parent's)
                code = 1
                try:
                    score_file(scorer, in_path, out_path, single, None, chunk_shard, (index, count))
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
        score_file(scorer, in_path, out_path, single, on_chunk, chunk_shard, (0, count))
    except BaseException:
        for pid in children:  # the parent failed (bad input, Ctrl-C): stop the copies
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        raise
    finally:
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return score_file(scorer, in_path, out_path, single, on_chunk, chunk_shard)
