"""BentoML 1.4 service for the PyTorch benchmark: the TorchScript MLP, adaptive batching on
(BentoML's documented way to serve a batchable model), one worker, one torch thread.

    MODEL_PATH=model.pt bentoml serve bentoml_service:MLP --host 127.0.0.1 --port N

``POST /predict`` with ``{"x": [[64 floats], ...]}`` answers the logits.
"""

from __future__ import annotations

import os

import bentoml
import numpy as np
import torch


@bentoml.service(workers=1)
class MLP:
    def __init__(self) -> None:
        torch.set_num_threads(1)
        self.model = torch.jit.load(os.environ["MODEL_PATH"], map_location="cpu").eval()

    @bentoml.api(batchable=True)
    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(x.astype(np.float32))).numpy()
