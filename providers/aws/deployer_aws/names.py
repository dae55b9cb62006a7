"""Resource names within SageMaker's rules: at most 63 of [a-zA-Z0-9-], no leading/trailing '-'.

- endpoint: ``PROJECT-TARGET`` (or the ``endpoint_name`` option);
- model and endpoint config (one pair per deployed version and settings):
  ``PREFIX-VERSION-SPEC`` where SPEC is a 6-hex hash of everything the pair is made of
  (image, role, environment, instance type/count or serverless), so that changing a setting
  makes a new pair while an unchanged push finds the existing one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from deployer.providers import ANNOTATION_KEYS

MAX_NAME = 63
SPEC_CHARS = 6
VARIANT = "AllTraffic"

TAG_PROJECT = "deployer-project"
TAG_TARGET = "deployer-target"
TAG_VERSION = "deployer-version"
TAG_PREVIOUS_CONFIG = "deployer-previous-config"


def clean(text: str) -> str:
    """Letters, digits and single '-' only, without '-' at either end."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-zA-Z0-9-]", "-", text)).strip("-")


def shorten(text: str, limit: int) -> str:
    """``text`` if it fits, else a prefix plus a short hash of the whole (stays unique)."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return f"{text[: limit - 7].rstrip('-')}-{digest}"


def endpoint_name(project: str, target: str, override: str | None = None) -> str:
    return override or shorten(clean(f"{project}-{target}"), MAX_NAME) or "deployer"


def spec_hash(spec: dict[str, Any]) -> str:
    """A short, stable hash of the model and endpoint-config settings."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:SPEC_CHARS]


def resource_prefix(endpoint: str, version: str) -> str:
    """The part of a model/config name before ``-VERSION-SPEC``; shared by all versions."""
    room = MAX_NAME - len(clean(version)) - SPEC_CHARS - 2
    return shorten(endpoint, max(room, 8))


def resource_name(endpoint: str, version: str, spec: str) -> str:
    """The name of the model and the endpoint config of ``version`` with settings ``spec``."""
    name = f"{resource_prefix(endpoint, version)}-{clean(version)}-{spec}"
    return shorten(name, MAX_NAME)


def tags(project: str, target: str, version: str | None = None) -> list[dict[str, str]]:
    """SageMaker/ECR tag list for a resource of this project and target."""
    pairs = {TAG_PROJECT: project, TAG_TARGET: target}
    if version:
        pairs[TAG_VERSION] = version
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


_TAG_CHARS = re.compile(r"[^\w .:/=+\-@]")  # SageMaker's tag pattern: letters, digits, _.:/=+-@


def annotation_tags(annotations: Mapping[str, str]) -> dict[str, str]:
    """Release annotations as SageMaker tags: other characters become '_', values at most
    256 characters, keys 128."""
    return {
        _TAG_CHARS.sub("_", key)[:128]: _TAG_CHARS.sub("_", value)[:256]
        for key, value in annotations.items()
    }


def annotations_of(tag_map: Mapping[str, str]) -> dict[str, str]:
    """The release annotations among a resource's tags."""
    return {key: value for key, value in tag_map.items() if key in ANNOTATION_KEYS}


def tag_map(tag_list: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list}
