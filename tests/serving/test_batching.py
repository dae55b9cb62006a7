"""MicroBatcher: concurrent requests share one predict call; failures stay isolated."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import pytest

from deployer.serving.batching import MicroBatcher

BAD = -1.0


class CountingModel:
    """Doubles its input, records each call's (method, rows), raises on a BAD value."""

    def __init__(self, rows_out: int | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.rows_out = rows_out

    async def __call__(self, rows: np.ndarray, method: str) -> np.ndarray:
        self.calls.append((method, len(rows)))
        if np.any(rows == BAD):
            raise ValueError(f"bad row in a batch of {len(rows)}")
        result = rows[:, 0] * 2
        return result if self.rows_out is None else result[: self.rows_out]


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout=10))


class ManualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock moves only when the test says so: ``call_later`` timers
    (the batcher's max_wait) fire after ``advance``, never because the machine was slow."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run_on_manual_clock(scenario: Callable[[ManualClockLoop], Coroutine[Any, Any, Any]]) -> Any:
    loop = ManualClockLoop()
    try:
        return loop.run_until_complete(scenario(loop))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def turns(count: int, until: Callable[[], bool] = lambda: False) -> None:
    """Let the loop run ``count`` turns (or fewer, once ``until()`` holds)."""
    for _ in range(count):
        if until():
            return
        await asyncio.sleep(0)


def row(value: float, count: int = 1) -> np.ndarray:
    return np.full((count, 3), value)


async def gather_settled(*awaitables: Any) -> list[Any]:
    return list(await asyncio.gather(*awaitables, return_exceptions=True))


def test_concurrent_submits_run_as_one_predict() -> None:
    model = CountingModel()
    sizes: list[int] = []
    batcher = MicroBatcher(model, max_batch_size=64, on_batch=sizes.append)

    async def scenario() -> list[Any]:
        submits = (batcher.submit(row(i, count=i), "predict") for i in (1, 2, 3))
        return await gather_settled(*submits)

    results = run(scenario())
    assert model.calls == [("predict", 6)]
    assert sizes == [3]
    assert [r.tolist() for r in results] == [[2.0], [4.0, 4.0], [6.0, 6.0, 6.0]]


def test_sequential_submits_are_not_delayed_or_merged() -> None:
    model = CountingModel()
    batcher = MicroBatcher(model, max_batch_size=64)

    async def scenario() -> list[Any]:
        return [await batcher.submit(row(i), "predict") for i in range(3)]

    assert [r.tolist() for r in run(scenario())] == [[0.0], [2.0], [4.0]]
    assert model.calls == [("predict", 1)] * 3


def test_a_failing_request_is_isolated() -> None:
    model = CountingModel()
    sizes: list[int] = []
    batcher = MicroBatcher(model, max_batch_size=64, on_batch=sizes.append)

    async def scenario() -> list[Any]:
        return await gather_settled(
            batcher.submit(row(1), "predict"),
            batcher.submit(row(BAD), "predict"),
            batcher.submit(row(3, count=2), "predict"),
        )

    good, bad, other = run(scenario())
    assert good.tolist() == [2.0]
    assert isinstance(bad, ValueError)
    assert str(bad) == "bad row in a batch of 1"
    assert other.tolist() == [6.0, 6.0]
    # One batch of 4 rows failed, then each request ran alone.
    assert model.calls == [("predict", 4), ("predict", 1), ("predict", 1), ("predict", 2)]
    assert sizes == [3, 1, 1, 1]


def test_a_model_returning_the_wrong_row_count_falls_back_to_single_requests() -> None:
    model = CountingModel(rows_out=1)
    batcher = MicroBatcher(model, max_batch_size=64)

    async def scenario() -> list[Any]:
        return await gather_settled(*(batcher.submit(row(i), "predict") for i in (1, 2)))

    assert [r.tolist() for r in run(scenario())] == [[2.0], [4.0]]
    assert model.calls == [("predict", 2), ("predict", 1), ("predict", 1)]


@pytest.mark.parametrize(
    ("request_rows", "max_batch_size", "expected_calls"),
    [
        ([1] * 10, 4, [4, 4, 2]),
        ([3, 3, 3], 4, [3, 3, 3]),
        ([2, 2, 2, 2], 4, [4, 4]),
        ([10, 1, 1], 4, [10, 2]),  # an oversized request runs alone, never split
        ([1] * 5, 1, [1] * 5),
    ],
)
def test_max_batch_size_caps_the_rows_per_call(
    request_rows: list[int], max_batch_size: int, expected_calls: list[int]
) -> None:
    model = CountingModel()
    batcher = MicroBatcher(model, max_batch_size=max_batch_size)

    async def scenario() -> list[Any]:
        return await gather_settled(
            *(batcher.submit(row(i, count=n), "predict") for i, n in enumerate(request_rows))
        )

    results = run(scenario())
    assert [n for _, n in model.calls] == expected_calls
    assert max(n for _, n in model.calls) <= max(max_batch_size, *request_rows)
    for i, (result, n) in enumerate(zip(results, request_rows, strict=True)):
        assert result.tolist() == [i * 2.0] * n


def test_methods_are_batched_separately() -> None:
    model = CountingModel()
    batcher = MicroBatcher(model, max_batch_size=64)

    async def scenario() -> list[Any]:
        return await gather_settled(
            batcher.submit(row(1), "predict"),
            batcher.submit(row(2), "predict_proba"),
            batcher.submit(row(3), "predict"),
        )

    results = run(scenario())
    assert sorted(model.calls) == [("predict", 2), ("predict_proba", 1)]
    assert [r.tolist() for r in results] == [[2.0], [4.0], [6.0]]


def test_max_wait_collects_requests_that_arrive_a_little_later() -> None:
    model = CountingModel()
    batcher = MicroBatcher(model, max_batch_size=64, max_wait_s=0.5)

    async def scenario(loop: ManualClockLoop) -> list[Any]:
        first = asyncio.ensure_future(batcher.submit(row(1), "predict"))
        await turns(50)  # without max_wait, first would have run alone by now
        assert not first.done() and model.calls == []
        second = asyncio.ensure_future(batcher.submit(row(2), "predict"))
        loop.advance(0.4)
        await turns(50)
        assert model.calls == []  # 0.4 s after the first request: still collecting
        loop.advance(0.1)
        return await gather_settled(first, second)

    results = run_on_manual_clock(scenario)
    assert model.calls == [("predict", 2)]
    assert [r.tolist() for r in results] == [[2.0], [4.0]]


def test_without_max_wait_requests_in_different_turns_are_not_merged() -> None:
    model = CountingModel()
    batcher = MicroBatcher(model, max_batch_size=64)

    async def scenario(loop: ManualClockLoop) -> list[Any]:
        first = asyncio.ensure_future(batcher.submit(row(1), "predict"))
        await turns(50, until=first.done)  # the clock stands still: no timer is waited for
        assert first.done()
        return await gather_settled(first, batcher.submit(row(2), "predict"))

    run_on_manual_clock(scenario)
    assert model.calls == [("predict", 1), ("predict", 1)]


def test_the_batcher_keeps_working_after_a_failure() -> None:
    model = CountingModel()
    batcher = MicroBatcher(model, max_batch_size=64)

    async def scenario() -> list[Any]:
        await gather_settled(batcher.submit(row(BAD), "predict"))
        return await gather_settled(*(batcher.submit(row(i), "predict") for i in (1, 2)))

    assert [r.tolist() for r in run(scenario())] == [[2.0], [4.0]]
    assert model.calls == [("predict", 1), ("predict", 2)]


# --- named tensors: batched only when every input's non-batch dims agree ------------------


class TensorModel:
    """Sums each row of ``tokens`` and returns named outputs; records each call's rows."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    async def __call__(self, inputs: dict[str, np.ndarray], method: str) -> dict[str, Any]:
        self.calls.append(len(inputs["tokens"]))
        return {"sum": inputs["tokens"].sum(axis=1), "first": inputs["tokens"][:, 0]}


def tokens(*rows: list[float]) -> dict[str, np.ndarray]:
    return {"tokens": np.array(rows, dtype=np.float32), "ids": np.arange(len(rows))}


def test_named_tensors_of_equal_shapes_share_a_batch_and_get_their_own_outputs() -> None:
    model = TensorModel()
    batcher = MicroBatcher(model, max_batch_size=64)

    async def scenario() -> list[Any]:
        return await gather_settled(
            batcher.submit(tokens([1, 2]), "predict"),
            batcher.submit(tokens([3, 4], [5, 6]), "predict"),
        )

    first, second = run(scenario())
    assert model.calls == [3]
    assert first["sum"].tolist() == [3.0] and first["first"].tolist() == [1.0]
    assert second["sum"].tolist() == [7.0, 11.0] and second["first"].tolist() == [3.0, 5.0]


def test_named_tensors_of_different_non_batch_shapes_run_apart() -> None:
    """A variable-length input: requests batch only with requests of the same length."""
    model = TensorModel()
    batcher = MicroBatcher(model, max_batch_size=64)

    async def scenario() -> list[Any]:
        return await gather_settled(
            batcher.submit(tokens([1, 2]), "predict"),
            batcher.submit(tokens([1, 2, 3]), "predict"),
            batcher.submit(tokens([4, 5]), "predict"),
        )

    short, long, other = run(scenario())
    assert sorted(model.calls) == [1, 2]  # the two 2-token requests together, the 3-token alone
    assert short["sum"].tolist() == [3.0]
    assert long["sum"].tolist() == [6.0]
    assert other["sum"].tolist() == [9.0]


# --- batches in flight: what arrives while a batch runs goes together next ---------------


class GatedModel(CountingModel):
    """A CountingModel whose every call waits until the test opens its gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.running = 0
        self.most_running = 0

    async def __call__(self, rows: np.ndarray, method: str) -> np.ndarray:
        self.calls.append((method, len(rows)))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        await self.gate.wait()
        self.running -= 1
        return rows[:, 0] * 2


def test_requests_arriving_while_a_batch_runs_form_the_next_batch() -> None:
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch_size=64)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(batcher.submit(row(1), "predict"))
        await turns(50, until=lambda: bool(model.calls))
        assert model.calls == [("predict", 1)]
        later = [asyncio.ensure_future(batcher.submit(row(i), "predict")) for i in (2, 3, 4)]
        await turns(50)
        assert model.calls == [("predict", 1)]  # they wait: one batch in flight
        model.gate.set()
        return await gather_settled(first, *later)

    results = run(scenario())
    assert model.calls == [("predict", 1), ("predict", 3)]
    assert model.most_running == 1
    assert [r.tolist() for r in results] == [[2.0], [4.0], [6.0], [8.0]]


def test_max_in_flight_lets_that_many_batches_run_at_once() -> None:
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch_size=64, max_in_flight=2)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(batcher.submit(row(1), "predict"))
        await turns(50, until=lambda: len(model.calls) == 1)
        second = asyncio.ensure_future(batcher.submit(row(2), "predict"))
        await turns(50, until=lambda: len(model.calls) == 2)
        third = asyncio.ensure_future(batcher.submit(row(3), "predict"))
        await turns(50)
        assert [n for _, n in model.calls] == [1, 1]  # two running, the third waits
        model.gate.set()
        return await gather_settled(first, second, third)

    results = run(scenario())
    assert [n for _, n in model.calls] == [1, 1, 1]
    assert model.most_running == 2
    assert [r.tolist() for r in results] == [[2.0], [4.0], [6.0]]


def test_waiting_groups_run_oldest_first_one_batch_at_a_time() -> None:
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch_size=2)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(batcher.submit(row(1), "predict"))
        await turns(50, until=lambda: bool(model.calls))
        waiting = [
            asyncio.ensure_future(batcher.submit(row(2), "predict_proba")),
            asyncio.ensure_future(batcher.submit(row(3), "predict")),
            asyncio.ensure_future(batcher.submit(row(4), "predict_proba")),
            asyncio.ensure_future(batcher.submit(row(5), "predict_proba")),
        ]
        await turns(5)
        model.gate.set()
        return await gather_settled(first, *waiting)

    results = run(scenario())
    assert model.calls == [
        ("predict", 1),
        ("predict_proba", 2),  # the oldest waiting group first, capped at max_batch_size
        ("predict_proba", 1),
        ("predict", 1),
    ]
    assert model.most_running == 1
    assert [r.tolist() for r in results] == [[2.0], [4.0], [6.0], [8.0], [10.0]]
