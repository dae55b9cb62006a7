"""ModelRunner: a slow custom predictor runs off the event loop, batched or not."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deployer.serving.errors import BadRequest
from deployer.serving.runner import ModelRunner
from deployer.serving.settings import ServingSettings

SLOW_PREDICTOR = """
import threading
started = threading.Event()  # predict is running
release = threading.Event()  # set by a coroutine on the event loop
class Slow:
    signature = {"width": 2, "datatype": "FP64"}
    batchable = {batchable}
    def predict(self, inputs, parameters):
        started.set()
        if not release.wait(60):
            raise RuntimeError("the event loop did not run while predict was blocked")
        return inputs.sum(axis=1)
"""


def loaded_runner(
    tmp_path: Path, module: str, source: str, class_name: str
) -> tuple[ModelRunner, Any]:
    """A runner whose python-flavour predictor is ``class_name`` from ``source``, loaded;
    and the predictor's module (what the test reads from it)."""
    (tmp_path / f"{module}.py").write_text(source)
    settings = ServingSettings(
        model_name=module,
        flavor="python",
        model_path=None,
        flavor_options={"predictor": f"{module}:{class_name}", "code_paths": [str(tmp_path)]},
    )
    runner = ModelRunner(settings)
    runner.start(exit_on_failure=False).join(timeout=30)
    assert runner.ready, runner.load_error
    return runner, sys.modules[module]


@pytest.mark.parametrize("batchable", [True, False])
def test_slow_custom_predictor_does_not_block_the_event_loop(
    tmp_path: Path, batchable: bool
) -> None:
    module = f"slow_{str(batchable).lower()}"  # a fresh module per case (sys.modules caches)
    source = SLOW_PREDICTOR.replace("{batchable}", str(batchable))
    runner, predictor = loaded_runner(tmp_path, module, source, "Slow")
    assert (runner._batcher is not None) is batchable

    async def unblock() -> None:
        """On the event loop: once predict is running, let it finish. A predict running on
        the loop would never let this run, and would fail after its 60 s wait."""
        while not predictor.started.is_set():
            await asyncio.sleep(0.005)
        predictor.release.set()

    async def scenario() -> list[float]:
        predicted, _ = await asyncio.gather(
            runner.predict(np.ones((2, 2)), "predict", {}), unblock()
        )
        return list(predicted)

    assert asyncio.run(asyncio.wait_for(scenario(), timeout=120)) == [2.0, 2.0]


COUNTING_PREDICTOR = """
calls = []
class Counting:
    signature = {"width": 2, "datatype": "FP64"}
    batchable = True
    def predict(self, inputs, parameters):
        calls.append((len(inputs), dict(parameters)))
        if (inputs != inputs).any():
            raise ValueError("Input X contains NaN.")
        return inputs.sum(axis=1)
"""


def counting_runner(tmp_path: Path, module: str) -> tuple[ModelRunner, list[Any]]:
    runner, predictor = loaded_runner(tmp_path, module, COUNTING_PREDICTOR, "Counting")
    return runner, predictor.calls


@pytest.mark.parametrize(
    "parameters",
    [{}, {"binary_data_output": True}, {"method": "predict", "binary_data_output": False}],
)
def test_encoding_parameters_do_not_split_batches(
    tmp_path: Path, parameters: dict[str, Any]
) -> None:
    """tritonclient always sends binary_data_output: such requests still share a predict."""
    module = f"counting_{len(parameters)}_{abs(hash(str(parameters)))}"
    runner, calls = counting_runner(tmp_path, module)

    async def scenario() -> list[Any]:
        return list(
            await asyncio.gather(
                *(runner.predict(np.ones((1, 2)), "predict", parameters) for _ in range(8))
            )
        )

    answers = asyncio.run(asyncio.wait_for(scenario(), timeout=120))
    assert [list(a) for a in answers] == [[2.0]] * 8
    assert calls == [(8, {})]  # one call, and the encoding parameters never reach the model


def test_parameters_the_model_reads_still_bypass_batching(tmp_path: Path) -> None:
    runner, calls = counting_runner(tmp_path, "counting_bypass")

    async def scenario() -> None:
        await asyncio.gather(
            *(runner.predict(np.ones((1, 2)), "predict", {"threshold": 0.5}) for _ in range(3))
        )

    asyncio.run(asyncio.wait_for(scenario(), timeout=120))
    assert calls == [(1, {"threshold": 0.5})] * 3


def test_the_models_input_rejection_is_a_400_naming_the_value(tmp_path: Path) -> None:
    runner, _ = counting_runner(tmp_path, "counting_nan")
    rows = np.array([[1.0, np.nan]])
    with pytest.raises(
        BadRequest,
        match=r"Input X contains NaN; a missing value \(NaN\) nan in "
        r"row 0, feature 1",
    ):
        asyncio.run(asyncio.wait_for(runner.predict(rows, "predict", {}), timeout=120))
