"""Loads the model in the background and runs predictions (batched when rows are independent)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from deployer.flavors import LoadedModel, load_model
from deployer.flavors.base import RequestError, Signature
from deployer.flavors.threshold import apply_threshold
from deployer.serving import metrics, request_context
from deployer.serving.batching import Inputs, MicroBatcher, batch_rows
from deployer.serving.columns import ColumnNames
from deployer.serving.errors import BadRequest, NotReady
from deployer.serving.offload import INLINE_ROWS
from deployer.serving.readiness import WorkerReadiness
from deployer.serving.rejections import is_input_rejection, rejection
from deployer.serving.settings import ServingSettings

log = logging.getLogger("deployer.serving")

# Flavours whose predict is a short, CPU-bound vectorised call: run it on the event loop
# when the batch is small (up to INLINE_ROWS rows), else on a worker thread. A custom
# predictor may block for long (I/O, big models): always on a worker thread, so health
# probes keep answering.
_INLINE_FLAVORS = frozenset({"sklearn", "onnx", "xgboost", "lightgbm", "catboost"})
# Request parameters that only shape the encoding of the answer (OIP's binary tensor
# extension): they never change the prediction, so such requests still share a batch.
ENCODING_PARAMETERS = frozenset({"method", "binary_data_output", "binary_data", "binary_data_size"})
# What sees each request's inputs and predictions once (capture, drift metrics):
# called on the event loop with the request id, the decoded inputs and the answer.
Observer = Callable[[str, Inputs, Any], None]


class ModelRunner:
    """Owns the loaded model: readiness, the default method, and predict."""

    def __init__(self, settings: ServingSettings) -> None:
        self.settings = settings
        self.model: LoadedModel | None = None
        self.load_error: str | None = None
        self._batcher: MicroBatcher | None = None
        self._inline = settings.flavor in _INLINE_FLAVORS
        self.workers = WorkerReadiness.from_environment(settings.workers)
        self.columns = ColumnNames()
        self.observers: list[Observer] = []

    @property
    def ready(self) -> bool:
        return self.model is not None

    def health(self) -> tuple[bool, str | None]:
        """What health probes report: ready once every worker process has loaded the model."""
        if self.model is None:
            return False, self.load_error
        return self.workers.all_loaded()

    @property
    def signature(self) -> Signature:
        return self.require_model().signature

    def require_model(self) -> LoadedModel:
        if self.model is None:
            reason = self.load_error or "the model is still loading"
            raise NotReady(reason)
        return self.model

    def default_method(self) -> str:
        return self.settings.default_method or self.signature.methods[0]

    def start(self, exit_on_failure: bool = True) -> threading.Thread:
        """Load the model on a background thread; the server answers liveness meanwhile."""
        thread = threading.Thread(
            target=self._load, args=(exit_on_failure,), name="model-loader", daemon=True
        )
        thread.start()
        return thread

    def _load(self, exit_on_failure: bool) -> None:
        started = time.perf_counter()
        try:
            model = load_model(
                self.settings.flavor, self.settings.model_path, self.settings.flavor_options
            )
            if self.settings.decision_threshold is not None:
                model = apply_threshold(model, self.settings.decision_threshold)
        except Exception as exc:
            self.load_error = f"model failed to load: {exc}"
            log.error("%s", self.load_error)
            if exit_on_failure:
                os._exit(3)  # let the platform restart us and show the log line above
            return
        seconds = time.perf_counter() - started
        metrics.MODEL_LOAD_SECONDS.set(seconds)
        use_batching = self.settings.batching
        if use_batching is None:
            use_batching = model.batchable
        if use_batching and model.batchable:
            self._batcher = MicroBatcher(
                self._call,
                self.settings.max_batch_size,
                self.settings.max_batch_wait_ms / 1000.0,
                on_batch=metrics.BATCH_SIZE.observe,
                max_in_flight=self.settings.max_concurrent_batches,
            )
        # The model and its libraries are ~100k long-lived objects: move them out of the
        # collector's reach, or every full collection pauses serving for 50-70 ms.
        gc.collect()
        gc.freeze()
        self.columns.use_model(model.extra)
        self.model = model
        self.workers.mark_ready()
        metrics.MODEL_READY.set(1)
        log.info("model %s (%s) loaded in %.2fs", self.settings.model_name, model.flavor, seconds)
        if "threshold" in model.extra:
            log.info("predict decides with the threshold %s", model.extra["threshold"])

    def _predict_now(self, rows: Inputs, method: str, parameters: Mapping[str, Any] = {}) -> Any:
        try:
            return self.require_model().predict(rows, method, parameters)
        except RequestError as exc:
            raise BadRequest(str(exc)) from None
        except ValueError as exc:
            if isinstance(rows, np.ndarray) and is_input_rejection(exc):
                raise rejection(exc, rows) from None
            raise

    def check_method(self, method: str) -> None:
        methods = self.signature.methods
        if method not in methods:
            raise BadRequest(f"unknown method {method!r}; this model offers {', '.join(methods)}")

    async def _call(
        self, rows: Inputs, method: str, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        """Run the model: on the event loop for small batches of the built-in flavours,
        else on a thread."""
        if self._inline and batch_rows(rows) <= INLINE_ROWS:
            return self._predict_now(rows, method, parameters or {})
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._predict_now, rows, method, parameters or {})

    async def predict(self, rows: Inputs, method: str, parameters: Mapping[str, Any]) -> Any:
        """Predict ``rows`` (or named tensors) with ``method``; parameters the model may
        read bypass batching."""
        self.check_method(method)
        other = {k: v for k, v in parameters.items() if k not in ENCODING_PARAMETERS}
        if self._batcher is not None and not other:
            result = await self._batcher.submit(rows, method)
        else:
            metrics.BATCH_SIZE.observe(1)
            result = await self._call(rows, method, other)
        if self.observers:
            self._observe(rows, result)
        return result

    def _observe(self, rows: Inputs, result: Any) -> None:
        """Show the request's inputs and answer to the observers, once per request."""
        request_id = request_context.claim()
        if request_id is None:
            return
        for observe in self.observers:
            try:
                observe(request_id, rows, result)
            except Exception:
                log.exception("observing a prediction failed")
