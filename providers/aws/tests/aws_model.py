"""The fake's strictness: each request checked against botocore's own service model.

botocore ships the API definition of every service (``botocore.loaders``). Its
``ParamValidator`` checks required members and types but not every bound, so the walk
below checks what the service itself enforces: required members, ``min``/``max`` (numbers,
string and list lengths), enums and patterns. ``semantic`` adds documented limits the model
cannot express (SageMaker's traffic-shifting sizes).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

SERVICES = {
    "sagemaker": "sagemaker",
    "ecr": "ecr",
    "application-autoscaling": "application-autoscaling",
    "cloudwatch": "cloudwatch",
    "logs": "logs",
}


@cache
def _model(service: str) -> Any:
    from botocore.loaders import Loader
    from botocore.model import ServiceModel

    return ServiceModel(Loader().load_service_model(service, "service-2"), service)


def problems(service: str, operation: str, body: dict[str, Any]) -> list[str]:
    """What the real service would refuse in this request (empty: nothing)."""
    name = SERVICES.get(service)
    if name is None:
        return []
    model = _model(name)
    if operation not in model.operation_names:
        return [f"{service} has no operation {operation}"]
    shape = model.operation_model(operation).input_shape
    found: list[str] = []
    if shape is not None:
        _walk(shape, body, operation, found)
    return found


def _walk(shape: Any, value: Any, where: str, found: list[str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            found.append(f"{where}: expected a structure, got {type(value).__name__}")
            return
        for member in shape.required_members:
            if member not in value:
                found.append(f"{where}: missing required member {member}")
        for key, item in value.items():
            if key not in shape.members:
                found.append(f"{where}: unknown member {key}")
            else:
                _walk(shape.members[key], item, f"{where}.{key}", found)
    elif kind == "list":
        if not isinstance(value, list):
            found.append(f"{where}: expected a list")
            return
        _bounds(len(value), meta, f"{where} (list length)", found)
        for index, item in enumerate(value):
            _walk(shape.member, item, f"{where}[{index}]", found)
    elif kind == "map":
        if not isinstance(value, dict):
            found.append(f"{where}: expected a map")
            return
        _bounds(len(value), meta, f"{where} (map size)", found)
        for key, item in value.items():
            _walk(shape.key, key, f"{where} key", found)
            _walk(shape.value, item, f"{where}[{key}]", found)
    elif kind == "string":
        if not isinstance(value, str):
            found.append(f"{where}: expected a string")
            return
        _bounds(len(value), meta, f"{where} (length)", found)
        if shape.enum and value not in shape.enum:
            found.append(f"{where}: {value!r} is not one of {', '.join(shape.enum)}")
        pattern = meta.get("pattern")
        if pattern and not _matches(pattern, value):
            found.append(f"{where}: {value!r} does not match {pattern}")
    elif kind in ("integer", "long", "float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            found.append(f"{where}: expected a number")
            return
        if kind in ("integer", "long") and not float(value).is_integer():
            found.append(f"{where}: expected an integer, got {value}")
        _bounds(value, meta, where, found)
    elif kind == "boolean" and not isinstance(value, bool):
        found.append(f"{where}: expected a boolean")


def _bounds(value: float, meta: dict[str, Any], where: str, found: list[str]) -> None:
    if "min" in meta and value < meta["min"]:
        found.append(f"{where}: {value} is below the minimum {meta['min']}")
    if "max" in meta and value > meta["max"]:
        found.append(f"{where}: {value} is above the maximum {meta['max']}")


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: the pattern is not checked
        return None


def _matches(pattern: str, value: str) -> bool:
    compiled = _compiled(pattern)
    return compiled is None or compiled.fullmatch(value) is not None  # Java matches()


def traffic_problems(routing: dict[str, Any], fleet: int | None) -> list[str]:
    """SageMaker's documented TrafficRoutingConfig limits: a canary at most 50% of the
    fleet, a linear step 10-50%, in whole instances (``fleet``: instance count, None for
    serverless)."""
    found: list[str] = []
    for key, low, high in (("CanarySize", 0, 50), ("LinearStepSize", 10, 50)):
        size = routing.get(key)
        if not size:
            continue
        value = size.get("Value", 0)
        if size.get("Type") == "CAPACITY_PERCENT":
            percent = float(value)
            if fleet is not None and (fleet * value) % 100:
                found.append(f"{key}: {value}% of {fleet} instance(s) is not whole instances")
        else:
            percent = 100.0 * value / (fleet or 1)
        inside = low < percent <= high if key == "CanarySize" else low <= percent <= high
        if not inside:
            found.append(f"{key}: {percent:g}% of the fleet is outside {low}-{high}%")
    return found
