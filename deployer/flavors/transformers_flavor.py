"""Hugging Face transformers models served as a pipeline task, on the CPU.

The model is a folder written by ``save_pretrained``: ``config.json`` (with
``architectures``), the weights and the tokenizer files. It loads as
``transformers.pipeline(task, model=folder, tokenizer=folder)`` with the hub switched off
(``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1``): nothing is ever downloaded.

The task is ``model.options.task`` in deployer.yaml, else inferred from the
architectures: ``...ForSequenceClassification`` → text-classification,
``...ForTokenClassification`` → token-classification, ``...ForCausalLM`` /
``...LMHeadModel`` → text-generation, a bare model (``BertModel``) → feature-extraction.

Every task takes one input, ``text`` (BYTES, shape [-1]: one string per row), and answers:

- text-classification: ``label`` (BYTES) and ``score`` (FP32), the best label per text;
  with ``top_k`` (option, or request parameter) k > 1 each is [-1, k], best first.
- token-classification: ``entities`` (BYTES): per text a JSON string, the list of
  ``{entity_group, score, word, start, end}`` (``aggregation_strategy`` option, default
  ``simple``; ``none`` gives ``entity`` and ``index`` per token instead of groups).
- feature-extraction (alias ``embeddings``): ``embedding`` (FP32 [-1, hidden]), the last
  hidden state mean-pooled over the text's own tokens (the attention mask).
- text-generation: ``generated_text`` (BYTES), the prompt and its continuation; the
  request parameter ``max_new_tokens`` may ask for at most the option ``max_new_tokens``
  (default 64), which is also the default.

Batching and padding: text-classification, token-classification and feature-extraction
micro-batch. A batch is tokenized together, padded by the tokenizer to the longest text
of the batch (its pad token, on its padding side) with an attention mask, and every text
is truncated to the model's max length (the tokenizer's ``model_max_length``, capped at
the config's position embeddings); so a text gets the same answer alone or in a batch, up
to float rounding. A tokenizer without a pad token does not batch. text-generation never
batches: each prompt is generated alone, unpadded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from deployer.flavors.base import LoadedModel, RequestError, TensorSpec, tensor_signature
from deployer.flavors.base import require as _require

name = "transformers"
suffixes: tuple[str, ...] = ()  # a folder: detected by looks_like_model
extra = "transformers"

TASKS = ("text-classification", "token-classification", "feature-extraction", "text-generation")
_ALIASES = {"embeddings": "feature-extraction", "sentiment-analysis": "text-classification",
            "ner": "token-classification"}  # fmt: skip
_OPTIONS = frozenset({"task", "top_k", "aggregation_strategy", "max_new_tokens", "threads"})
_AGGREGATIONS = ("none", "simple", "first", "average", "max")
DEFAULT_MAX_NEW_TOKENS = 64
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                    "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")  # fmt: skip
TEXT = TensorSpec("text", "BYTES", (-1,))
_OUTPUTS: dict[str, tuple[TensorSpec, ...]] = {
    "text-classification": (
        TensorSpec("label", "BYTES", (-1,)),
        TensorSpec("score", "FP32", (-1,)),
    ),
    "token-classification": (TensorSpec("entities", "BYTES", (-1,)),),
    "text-generation": (TensorSpec("generated_text", "BYTES", (-1,)),),
}


def looks_like_model(path: str) -> bool:
    """A save_pretrained folder: config.json and tokenizer files."""
    if not os.path.isdir(path) or not os.path.isfile(os.path.join(path, "config.json")):
        return False
    return any(os.path.isfile(os.path.join(path, f)) for f in _TOKENIZER_FILES)


def task_for(architectures: list[str]) -> str | None:
    """The pipeline task for a config's ``architectures``, or None."""
    for architecture in architectures:
        if architecture.endswith("ForSequenceClassification"):
            return "text-classification"
        if architecture.endswith("ForTokenClassification"):
            return "token-classification"
        if architecture.endswith(("ForCausalLM", "LMHeadModel")):
            return "text-generation"
        if architecture.endswith("Model") and "For" not in architecture:
            return "feature-extraction"
    return None


def _config(path: str) -> dict[str, Any]:
    config_file = os.path.join(path, "config.json")
    if not os.path.isdir(path):
        raise ValueError(
            f"{path} is not a folder; the transformers flavour loads a folder written by "
            "save_pretrained (config.json, weights and tokenizer files)"
        )
    try:
        with open(config_file, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        raise ValueError(
            f"{config_file} does not exist; save the model with save_pretrained(folder)"
        ) from None
    except ValueError as exc:
        raise ValueError(f"{config_file} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_file} must hold a JSON object")
    return config


def resolve_task(path: str, options: Mapping[str, Any]) -> str:
    """The task from the options, else from config.json's architectures; errors name both."""
    config_file = os.path.join(path, "config.json")
    supported = ", ".join(TASKS)
    task = options.get("task")
    if task is not None:
        task = _ALIASES.get(str(task), str(task))
        if task not in TASKS:
            raise ValueError(
                f"model.options.task is {options['task']!r}; the transformers flavour serves "
                f"{supported} (or embeddings)"
            )
        return task
    architectures = _config(path).get("architectures") or []
    if not isinstance(architectures, list):
        architectures = []
    found = task_for([str(a) for a in architectures])
    if found is None:
        raise ValueError(
            f"{config_file}: cannot tell the task from architectures "
            f"{', '.join(map(str, architectures)) or '(none)'}; set model.options.task to one "
            f"of {supported}"
        )
    return found


def _check_options(options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - _OPTIONS - {"code_paths"})
    if unknown:
        raise ValueError(
            f"the transformers flavour does not take {', '.join(unknown)} (its signature is "
            f"fixed: one 'text' input); model.options may set {', '.join(sorted(_OPTIONS))}"
        )
    aggregation = options.get("aggregation_strategy", "simple")
    if aggregation not in _AGGREGATIONS:
        raise ValueError(
            f"model.options.aggregation_strategy is {aggregation!r}; expected one of "
            f"{', '.join(_AGGREGATIONS)}"
        )
    for key in ("top_k", "max_new_tokens", "threads"):
        if key in options:
            _positive(options[key], f"model.options.{key}", ValueError)


def _positive(value: Any, what: str, error: type[ValueError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise error(f"{what} must be a positive integer, got {value!r}")
    return value


def load(path: str | None, options: Mapping[str, Any]) -> LoadedModel:
    """Load a save_pretrained folder as a CPU pipeline for its task."""
    if path is None:
        raise ValueError("the transformers flavour needs model.path (a save_pretrained folder)")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    _check_options(options)
    task = resolve_task(path, options)
    if not looks_like_model(path):
        raise ValueError(
            f"{path} has no tokenizer files (looked for {', '.join(_TOKENIZER_FILES)}); "
            "save the tokenizer into the same folder: tokenizer.save_pretrained(folder)"
        )
    torch = _require("torch", extra, name)
    transformers = _require("transformers", extra, name)
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(int(options.get("threads") or 1))
    pipe = transformers.pipeline(task, model=path, tokenizer=path, device="cpu")
    _cap_max_length(pipe)
    batchable = task != "text-generation" and pipe.tokenizer.pad_token is not None
    if task == "text-classification":
        predict = _classifier(pipe, int(options.get("top_k") or 1))
    elif task == "token-classification":
        predict = _tagger(pipe, str(options.get("aggregation_strategy", "simple")))
    elif task == "feature-extraction":
        predict = _embedder(pipe, torch)
    else:
        predict = _generator(pipe, int(options.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS))
    outputs = _OUTPUTS.get(task) or (
        TensorSpec("embedding", "FP32", (-1, int(pipe.model.config.hidden_size))),
    )
    return LoadedModel(
        flavor=name,
        signature=tensor_signature((TEXT,), outputs),
        predict_fn=predict,
        batchable=batchable,
        extra={"task": task},
    )


def _cap_max_length(pipe: Any) -> None:
    """Truncate to what the model can take: the config's position embeddings at most."""
    config = pipe.model.config
    positions = getattr(config, "max_position_embeddings", None) or getattr(
        config, "n_positions", None
    )
    if isinstance(positions, int) and pipe.tokenizer.model_max_length > positions:
        pipe.tokenizer.model_max_length = positions


def texts_of(tensors: Mapping[str, np.ndarray]) -> list[str]:
    """The ``text`` input as a list of strings (bytes decoded as UTF-8)."""
    texts: list[str] = []
    for index, value in enumerate(tensors["text"].ravel().tolist()):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise RequestError(f"input 'text' row {index} is not UTF-8") from None
        if not isinstance(value, str):
            raise RequestError(
                f"input 'text' row {index} is {type(value).__name__}; expected a string"
            )
        texts.append(value)
    return texts


Predict = Callable[[Mapping[str, np.ndarray], str, Mapping[str, Any]], Any]


def _classifier(pipe: Any, default_top_k: int) -> Predict:
    def predict(
        tensors: Mapping[str, np.ndarray], method: str, parameters: Mapping[str, Any]
    ) -> Any:
        texts = texts_of(tensors)
        top_k = default_top_k
        if "top_k" in parameters:
            top_k = _positive(parameters["top_k"], "parameter top_k", RequestError)
        if not texts:
            return {"label": np.array([], dtype=object), "score": np.array([], dtype=np.float32)}
        answers = pipe(texts, top_k=top_k, batch_size=len(texts), truncation=True)
        labels = np.array([[a["label"] for a in row] for row in answers], dtype=object)
        scores = np.array([[a["score"] for a in row] for row in answers], dtype=np.float32)
        if top_k == 1:
            labels, scores = labels[:, 0], scores[:, 0]
        return {"label": labels, "score": scores}

    return predict


def _tagger(pipe: Any, aggregation: str) -> Predict:
    def predict(
        tensors: Mapping[str, np.ndarray], method: str, parameters: Mapping[str, Any]
    ) -> Any:
        texts = texts_of(tensors)
        if not texts:
            return np.array([], dtype=object)
        answers = pipe(texts, batch_size=len(texts), aggregation_strategy=aggregation)
        return np.array([json.dumps(_plain(row)) for row in answers], dtype=object)

    return predict


def _plain(value: Any) -> Any:
    """Pipeline output with numpy scalars as plain numbers (JSON-ready)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _embedder(pipe: Any, torch: Any) -> Predict:
    """The pipeline's model and tokenizer, padding to the longest text, masked mean pool
    (the pipeline's own feature-extraction keeps the padding positions of a batch)."""
    tokenizer, model = pipe.tokenizer, pipe.model
    hidden_size = int(model.config.hidden_size)

    def predict(
        tensors: Mapping[str, np.ndarray], method: str, parameters: Mapping[str, Any]
    ) -> Any:
        texts = texts_of(tensors)
        if not texts:
            return np.zeros((0, hidden_size), dtype=np.float32)
        encoded = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**encoded)[0]
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return pooled.float().numpy()

    return predict


def _generator(pipe: Any, limit: int) -> Predict:
    def predict(
        tensors: Mapping[str, np.ndarray], method: str, parameters: Mapping[str, Any]
    ) -> Any:
        texts = texts_of(tensors)
        tokens = limit
        if "max_new_tokens" in parameters:
            tokens = _positive(
                parameters["max_new_tokens"], "parameter max_new_tokens", RequestError
            )
            if tokens > limit:
                raise RequestError(
                    f"parameter max_new_tokens is {tokens}; this model allows at most {limit} "
                    "(model.options.max_new_tokens)"
                )
        generated = [
            pipe(text, max_new_tokens=tokens, truncation=True)[0]["generated_text"]
            for text in texts
        ]
        return np.array(generated, dtype=object)

    return predict
