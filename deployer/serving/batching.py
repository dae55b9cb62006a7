"""Micro-batching: requests that arrive together run as one vectorised predict.

A request is queued; the flush runs on the next event-loop turn (or after
``max_wait_s``), so every request parsed in the same turn joins the batch and an idle
server adds no latency. If a batch fails, each request is retried alone so only the
bad one gets the error. ``predict`` is a coroutine function: the runner decides whether
the model runs on the event loop or on a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

Predict = Callable[[np.ndarray, str], Awaitable[Any]]


class MicroBatcher:
    """Groups concurrent ``submit`` calls per method into one ``predict``."""

    def __init__(
        self,
        predict: Predict,
        max_batch_size: int,
        max_wait_s: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._predict = predict
        self._max_rows = max_batch_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._pending: dict[str, list[tuple[np.ndarray, asyncio.Future[Any]]]] = {}
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()  # keep running batches referenced

    async def submit(self, rows: np.ndarray, method: str) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.setdefault(method, []).append((rows, future))
        if not self._scheduled:
            self._scheduled = True
            if self._max_wait_s > 0:
                loop.call_later(self._max_wait_s, self._flush)
            else:
                loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for method, items in pending.items():
            for chunk in _chunks(items, self._max_rows):
                task = asyncio.ensure_future(self._run(method, chunk))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _run(self, method: str, items: list[tuple[np.ndarray, asyncio.Future[Any]]]) -> None:
        if len(items) == 1:
            rows, future = items[0]
            await self._settle(future, rows, method)
            return
        batch = np.concatenate([rows for rows, _ in items])
        if self._on_batch:
            self._on_batch(len(items))
        try:
            result = np.asarray(await self._predict(batch, method))
            if len(result) != len(batch):
                raise ValueError("the model returned a different number of rows")
        except Exception:
            for rows, future in items:  # isolate the failing request
                await self._settle(future, rows, method)
            return
        start = 0
        for rows, future in items:
            end = start + len(rows)
            if not future.done():
                future.set_result(result[start:end])
            start = end

    async def _settle(self, future: asyncio.Future[Any], rows: np.ndarray, method: str) -> None:
        if self._on_batch:
            self._on_batch(1)
        try:
            result = await self._predict(rows, method)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)


def _chunks(
    items: list[tuple[np.ndarray, asyncio.Future[Any]]], max_rows: int
) -> list[list[tuple[np.ndarray, asyncio.Future[Any]]]]:
    chunks: list[list[tuple[np.ndarray, asyncio.Future[Any]]]] = [[]]
    rows = 0
    for item in items:
        if chunks[-1] and rows + len(item[0]) > max_rows:
            chunks.append([])
            rows = 0
        chunks[-1].append(item)
        rows += len(item[0])
    return chunks
