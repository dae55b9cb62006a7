"""Names and labels of the Vertex resources deployer creates, within Google's naming rules.

Label keys and values: at most 63 characters of lower-case letters, digits, ``_`` and
``-`` (keys start with a letter). Display names: at most 128 characters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from deployer.providers import ANNOTATION_KEYS

LABEL_PROJECT = "deployer-project"
LABEL_TARGET = "deployer-target"
LABEL_VERSION = "deployer-version"
LABEL_PREVIOUS = "deployer-previous"  # on the endpoint: the version promoted before
LABEL_MAX = 63
DISPLAY_MAX = 128
_NOT_LABEL = re.compile(r"[^a-z0-9_-]+")


def label_value(text: str) -> str:
    """``text`` as a valid label value; long or rewritten values keep a short hash suffix."""
    value = _NOT_LABEL.sub("-", text.lower())
    if value == text and len(value) <= LABEL_MAX:
        return value
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{value[: LABEL_MAX - 9].rstrip('-_')}-{digest}"


def display_name(text: str) -> str:
    """``text`` cut to the 128 characters Vertex allows for display names."""
    if len(text) <= DISPLAY_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: DISPLAY_MAX - 9]}-{digest}"


def owner_labels(project: str, target: str) -> dict[str, str]:
    """The labels naming what deployer owns for one project and target."""
    return {LABEL_PROJECT: label_value(project), LABEL_TARGET: label_value(target)}


def version_labels(project: str, target: str, version: str) -> dict[str, str]:
    return {**owner_labels(project, target), LABEL_VERSION: label_value(version)}


def annotation_labels(annotations: Mapping[str, str]) -> dict[str, str]:
    """Release annotations as Vertex labels (keys and values lowercased to the label rules)."""
    return {label_value(key): label_value(value) for key, value in annotations.items()}


def annotations_of(labels: Mapping[str, str]) -> dict[str, str]:
    """The release annotations among a resource's labels."""
    return {key: value for key, value in labels.items() if key in ANNOTATION_KEYS}


def label_filter(labels: Mapping[str, str]) -> str:
    """A Vertex list filter matching every label: ``labels.k="v" AND ...``.

    Hyphenated keys go unquoted, as the SDK itself filters models by
    ``labels.google-vertex-llm-tuning-base-model-id="..."``.
    """
    return " AND ".join(f'labels.{key}="{value}"' for key, value in sorted(labels.items()))


def has_labels(resource_labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(resource_labels.get(key) == value for key, value in wanted.items())


def endpoint_display_name(project: str, target: str, override: str | None) -> str:
    return display_name(override or f"{project}-{target}")


def model_display_name(project: str, target: str, version: str) -> str:
    return display_name(f"{project}-{target}-{version}")


def deployed_model_display_name(version: str) -> str:
    """The DeployedModel's display name carries the version (its only free-form field)."""
    return display_name(version)


def image_repository(registry: str, image_name: str) -> str:
    """``REGISTRY/IMAGE``: Artifact Registry image names are lower-case."""
    name = re.sub(r"[^a-z0-9._/-]+", "-", image_name.lower()).strip("-./") or "model"
    return f"{registry}/{name}"


def seconds(value: float) -> str:
    """A duration for messages: ``0.3s``, ``12s``."""
    return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"
