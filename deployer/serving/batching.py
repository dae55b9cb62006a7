"""Micro-batching: requests that arrive together run as one vectorised predict.

A request is queued; the flush runs on the next event-loop turn (or after
``max_wait_s``), so every request parsed in the same turn joins the batch and an idle
server adds no latency. At most ``max_in_flight`` batches run at once (default 1, one
model instance): requests that arrive while a batch runs wait for it and then go
together as the next batch, so under load batches grow to what the model can take
instead of many small batches competing for the same cores. If a batch fails, each
request is retried alone so only the bad one gets the error. ``predict`` is a coroutine
function: the runner decides whether the model runs on the event loop or on a worker
thread.

What a request carries is a 2-D array of rows (tabular) or ``{input name: array}``
(named tensors). The batching rule: requests share a batch only when they ask for the
same method and every input agrees on everything but the batch (first) dimension:
same names, same non-batch dimensions (the decoder has already cast each input to
its datatype). Requests are grouped by that
shape, so a tensor model with variable non-batch dimensions (a sequence length, an
image size) batches only requests of equal shapes; nothing is padded. The batch is
the concatenation along the first dimension; the model's answer (an array, or a dict
of arrays for named outputs) is cut back per request along its first dimension.
Models a flavour marks unsafe to batch (``LoadedModel.batchable`` False) never get here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, TypeAlias

import numpy as np

# A request's inputs: rows, or named tensors.
Inputs: TypeAlias = "np.ndarray | dict[str, np.ndarray]"
Predict = Callable[[Inputs, str], Awaitable[Any]]
Item = tuple[Inputs, "asyncio.Future[Any]"]


def batch_rows(inputs: Inputs) -> int:
    """How many rows (the first dimension) a request carries."""
    if isinstance(inputs, dict):
        return len(next(iter(inputs.values()))) if inputs else 0
    return len(inputs)


def shape_key(inputs: Inputs) -> Hashable:
    """What must agree for requests to share a batch: everything but the batch dimension."""
    if isinstance(inputs, dict):
        return tuple((name, a.shape[1:]) for name, a in sorted(inputs.items()))
    return inputs.shape[1:]


def concatenate(parts: list[Inputs]) -> Inputs:
    """The requests' inputs as one batch (all of one shape_key)."""
    first = parts[0]
    if isinstance(first, dict):
        return {name: np.concatenate([part[name] for part in parts]) for name in first}
    return np.concatenate(parts)  # type: ignore[arg-type]


def _result_rows(result: Any) -> dict[str, Any]:
    """The model's answer as named arrays ("" for a bare array)."""
    if isinstance(result, Mapping):
        return {str(k): np.asarray(v) for k, v in result.items()}
    return {"": np.asarray(result)}


def _cut(parts: dict[str, Any], start: int, end: int) -> Any:
    if set(parts) == {""}:
        return parts[""][start:end]
    return {name: array[start:end] for name, array in parts.items()}


class MicroBatcher:
    """Groups concurrent ``submit`` calls per method into one ``predict``."""

    def __init__(
        self,
        predict: Predict,
        max_batch_size: int,
        max_wait_s: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
        max_in_flight: int = 1,
    ) -> None:
        self._predict = predict
        self._max_rows = max_batch_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._max_in_flight = max(1, max_in_flight)
        self._pending: dict[tuple[str, Hashable], list[Item]] = {}  # oldest group first
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()  # the running batches

    @property
    def running(self) -> int:
        """How many batches are running now."""
        return len(self._tasks)

    async def submit(self, rows: Inputs, method: str) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.setdefault((method, shape_key(rows)), []).append((rows, future))
        if not self._scheduled and len(self._tasks) < self._max_in_flight:
            self._scheduled = True
            if self._max_wait_s > 0:
                loop.call_later(self._max_wait_s, self._flush)
            else:
                loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        """Start batches from the oldest waiting group while fewer than max_in_flight run."""
        self._scheduled = False
        while self._pending and len(self._tasks) < self._max_in_flight:
            key = next(iter(self._pending))
            chunk, rest = _take(self._pending[key], self._max_rows)
            if rest:
                self._pending[key] = rest
            else:
                del self._pending[key]
            task = asyncio.ensure_future(self._run(key[0], chunk))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A batch ended: what waited meanwhile goes next, at once (it has waited)."""
        self._tasks.discard(task)
        if self._pending and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def _run(self, method: str, items: list[Item]) -> None:
        if len(items) == 1:
            rows, future = items[0]
            await self._settle(future, rows, method)
            return
        batch = concatenate([rows for rows, _ in items])
        total = batch_rows(batch)
        if self._on_batch:
            self._on_batch(len(items))
        try:
            parts = _result_rows(await self._predict(batch, method))
            if any(array.ndim == 0 or len(array) != total for array in parts.values()):
                raise ValueError("the model returned a different number of rows")
        except Exception:
            for rows, future in items:  # isolate the failing request
                await self._settle(future, rows, method)
            return
        start = 0
        for rows, future in items:
            end = start + batch_rows(rows)
            if not future.done():
                future.set_result(_cut(parts, start, end))
            start = end

    async def _settle(self, future: asyncio.Future[Any], rows: Inputs, method: str) -> None:
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


def _take(items: list[Item], max_rows: int) -> tuple[list[Item], list[Item]]:
    """The first requests that fit in ``max_rows`` (at least one), and the rest."""
    rows = 0
    for count, item in enumerate(items):
        size = batch_rows(item[0])
        if count and rows + size > max_rows:
            return items[:count], items[count:]
        rows += size
    return items, []
