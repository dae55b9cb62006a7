"""BentoML 1.4 service for the text benchmark: a transformers text-classification pipeline,
adaptive batching on (each batch in one pipeline call), one worker, one torch thread.

    MODEL_PATH=folder bentoml serve bentoml_text_service:TextClassifier --port N

``POST /predict`` with ``{"texts": ["..."]}`` answers ``[{"label": ..., "score": ...}]``.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import torch
import transformers


@bentoml.service(workers=1)
class TextClassifier:
    def __init__(self) -> None:
        torch.set_num_threads(1)
        folder = os.environ["MODEL_PATH"]
        self.pipe = transformers.pipeline(
            "text-classification", model=folder, tokenizer=folder, device="cpu"
        )

    @bentoml.api(batchable=True)
    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        return list(self.pipe(texts, batch_size=len(texts), truncation=True))
