"""Batch through a target's running deployment (``deployer batch --endpoint``).

The file is read and shaped here by the image's batch runner code (so row order, resuming
and failures are the runner's), and each part's features go to the deployment as
``application/x-npy`` requests through the target's real invoke path (``Provider.invoke``,
what ``deployer predict`` uses), no larger than the payload limit. No job start-up: the
deployment's process has its model loaded already, and reading here while it predicts
there uses two cores. The deployment must serve this project's model (checked against the
release annotation the target reports).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from deployer.errors import UsageError
from deployer.flavors.base import LoadedModel
from deployer.providers import ANNOTATION_MODEL, Invocation, Provider
from deployer.serving.batch_runner import ROW_WISE, ScorerUnavailable
from deployer.serving.batch_shaping import model_feature_names
from deployer.serving.codecs import JSON, NPY, media_type
from deployer.serving.errors import BadRequest

NPY_HEADER_BYTES = 256  # room for the .npy header in a request's payload budget
REJECTED = (400, 422)  # the rows were refused: a row failure, not an outage
NUMERIC = "biuf"  # predictions of these dtype kinds travel as .npy (no pickles needed)

Invoke = Callable[[bytes, str, str | None], Invocation]


class EndpointScorer:
    """A ``ScoresRows`` whose predictions come from a deployment: ``model`` (the project's
    own, loaded here) says the signature and feature names; ``invoke`` asks the target."""

    def __init__(
        self, model: LoadedModel, invoke: Invoke, target: str, max_payload_bytes: int
    ) -> None:
        if model.signature.is_tensor:
            raise UsageError(
                f"--endpoint sends tabular rows; the {model.flavor} model takes named tensors "
                "(run the batch job without --endpoint)"
            )
        self.signature = model.signature
        self.model_names = model_feature_names(model)
        self.row_wise = model.flavor in ROW_WISE
        self.overlaps = True  # the deployment predicts while the next part is read here
        self._invoke, self.target = invoke, target
        self._accept = JSON  # the first answer says whether .npy can carry the predictions
        self._budget = max(1, max_payload_bytes - NPY_HEADER_BYTES)

    def predict(self, inputs: Any) -> list[Any]:
        return list(np.asarray(self.predict_array(inputs)).tolist())

    def predict_array(self, inputs: Any) -> Any:
        """The predictions of ``inputs`` (2-D), in as few requests as the payload allows."""
        rows = np.ascontiguousarray(inputs)
        per_request = max(1, self._budget // max(1, rows[:1].nbytes))
        answers = [self._ask(rows[i : i + per_request]) for i in range(0, len(rows), per_request)]
        return answers[0] if len(answers) == 1 else np.concatenate(answers)

    def _ask(self, rows: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        np.save(buffer, rows, allow_pickle=False)
        try:
            answer = self._invoke(buffer.getvalue(), NPY, self._accept)
        except Exception as exc:  # DeployerError from the provider: unreachable
            raise ScorerUnavailable(f"{self.target}: {exc}") from None
        if answer.status in REJECTED:  # named with the rows, as the model's own errors are
            raise BadRequest(f"{self.target} answered {answer.status}: {_reason(answer.body)}")
        if not 200 <= answer.status < 300:
            raise ScorerUnavailable(
                f"{self.target} answered {answer.status}: {_reason(answer.body)}"
            )
        try:
            predictions = _predictions(answer)
        except (ValueError, KeyError, TypeError, EOFError) as exc:
            raise ScorerUnavailable(
                f"{self.target}: expected JSON 'predictions' or a .npy array, got {exc!r}"
            ) from None
        if self._accept == JSON and predictions.dtype.kind in NUMERIC:
            self._accept = NPY  # numbers: the rest come as .npy (no JSON to parse)
        if len(predictions) != len(rows):
            raise ScorerUnavailable(
                f"{self.target} answered {len(predictions)} predictions for {len(rows)} rows"
            )
        return predictions


def _predictions(answer: Invocation) -> np.ndarray:
    """The answer's predictions: a .npy body, or JSON ``{"predictions": [...]}``."""
    if media_type(answer.content_type) == NPY:
        return np.load(io.BytesIO(answer.body), allow_pickle=False)
    return np.asarray(orjson.loads(answer.body)["predictions"])


def _reason(body: bytes) -> str:
    """The server's ``{"error": ...}`` message, else the body's first 300 characters."""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    return str(error) if error else body[:300].decode("utf-8", "replace")


def serving_this_model(provider: Provider, target: str, model_sha256: str) -> None:
    """UsageError unless ``target`` is healthy and (where it reports one) serves the model
    ``model_sha256``: predictions of another model would be written as this one's."""
    status = provider.status()
    if not status.healthy:
        why = f": {status.reason}" if status.reason else ""
        raise UsageError(
            f"--endpoint: target {target!r} is {status.state}{why}",
            hint=f"deployer push --to {target} first, or run the batch job without --endpoint",
        )
    annotations = status.details.get("annotations") or {}
    served = annotations.get(ANNOTATION_MODEL) if isinstance(annotations, dict) else None
    if served and model_sha256 and not model_sha256.startswith(str(served)):
        raise UsageError(
            f"--endpoint: target {target!r} serves model {served}, this project's model is "
            f"{model_sha256[: len(str(served))]}",
            hint=f"deployer push --to {target} first, or run the batch job without --endpoint",
        )
