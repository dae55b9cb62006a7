"""ModelRunner: a slow custom predictor runs off the event loop, batched or not."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from deployer.serving.runner import ModelRunner
from deployer.serving.settings import ServingSettings

SLOW_PREDICTOR = """
import time
class Slow:
    signature = {"width": 2, "datatype": "FP64"}
    batchable = {batchable}
    def predict(self, inputs, parameters):
        time.sleep(0.3)
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

    async def scenario() -> tuple[list[float], list[float]]:
        ticks: list[float] = []

        async def ticker() -> None:
            for _ in range(10):
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.02)

        results = await asyncio.gather(runner.predict(np.ones((2, 2)), "predict", {}), ticker())
        return list(results[0]), ticks

    predictions, ticks = asyncio.run(scenario())
    assert predictions == [2.0, 2.0]
    gaps = np.diff(ticks)
    assert gaps.max() < 0.2  # a 0.3 s predict on the loop would stall the ticker
