"""ModelRunner: a slow custom predictor runs off the event loop, batched or not."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import pytest

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


@pytest.mark.parametrize("batchable", [True, False])
def test_slow_custom_predictor_does_not_block_the_event_loop(
    tmp_path: Path, batchable: bool
) -> None:
    module = f"slow_{str(batchable).lower()}"  # a fresh module per case (sys.modules caches)
    (tmp_path / f"{module}.py").write_text(SLOW_PREDICTOR.replace("{batchable}", str(batchable)))
    settings = ServingSettings(
        model_name="slow",
        flavor="python",
        model_path=None,
        flavor_options={"predictor": f"{module}:Slow", "code_paths": [str(tmp_path)]},
    )
    runner = ModelRunner(settings)
    runner.start(exit_on_failure=False).join(timeout=30)
    assert runner.ready, runner.load_error
    assert (runner._batcher is not None) is batchable

    predictor = sys.modules[module]

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
