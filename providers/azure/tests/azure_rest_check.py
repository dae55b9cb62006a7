"""Checks a request body the fake ARM receives against the azure-ai-ml REST models.

The SDK ships the generated models of the ARM API it calls (``azure.ai.ml._restclient.
arm_ml_service.models``, API version ``API_VERSION``). A body is deserialized with the
model of its route (discriminators resolve to the concrete type, e.g. a deployment's
``endpointComputeType: Managed``), then every field the model says is ``Required`` and
may be sent on create must be present, nested models included. On top of the schema,
the service's documented limits: traffic shares are integers 0-100 summing to 100 (or
no traffic at all), mirror traffic at most 50% per deployment, a deployment's
``requestTimeout`` at most 180 s, ``maxConcurrentRequestsPerInstance`` and
``sku.capacity`` at least 1 (and at most ``MAX_INSTANCES`` instances). Each problem is a
string naming the field, the value and what the service expects.
"""

from __future__ import annotations

import datetime
import re
from functools import cache
from typing import Any

API_VERSION = "2025-12-01"  # arm_ml_service's default api-version
# "Max request time-out at endpoint level | 180 seconds" and "Number of instances per
# deployment | 50" for managed online endpoints: MicrosoftDocs/azure-ai-docs,
# articles/machine-learning/how-to-manage-quotas.md (commit 0c509fa9); request_timeout_ms
# "maximum value allowed is 180000": reference-yaml-deployment-managed-online.md.
MAX_REQUEST_TIMEOUT = datetime.timedelta(seconds=180)
MAX_INSTANCES = 50
MAX_MIRROR_PERCENT = 50


@cache
def _required(cls: type) -> frozenset[str]:
    """The attributes a model's docstring marks ``Required.`` (own and inherited)."""
    found: set[str] = set()
    for klass in cls.__mro__:
        doc = klass.__doc__ or ""
        for name, text in re.findall(r":ivar (\w+):(.*?)(?=\n\s*:vartype|\Z)", doc, re.S):
            if re.search(r"\bRequired\.", text):
                found.add(name)
    return frozenset(found)


def _creatable(rest_field: Any) -> bool:
    visibility = getattr(rest_field, "_visibility", None)
    return visibility is None or "create" in visibility


def model_problems(model: Any, where: str) -> list[str]:
    """Required fields missing anywhere in ``model`` (an SDK REST model instance)."""
    from azure.ai.ml._restclient.arm_ml_service._utils.model_base import Model

    problems: list[str] = []
    cls = type(model)
    for attr, rest_field in cls._attr_to_rest_field.items():
        name = rest_field._rest_name
        path = f"{where}.{name}"
        if not _creatable(rest_field):
            continue
        if name not in model:
            if attr in _required(cls):
                problems.append(f"{path} is required ({cls.__name__}) but missing")
            continue
        try:
            value = getattr(model, attr)
        except (TypeError, ValueError, KeyError) as exc:
            problems.append(f"{path}: {model[name]!r} does not deserialize ({exc})")
            continue
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if isinstance(item, Model):
                suffix = f"[{index}]" if isinstance(value, list) else ""
                problems.extend(model_problems(item, path + suffix))
    return problems


def _deserialize(model_cls: Any, body: Any, where: str) -> tuple[Any, list[str]]:
    if not isinstance(body, dict):
        return None, [f"{where}: the body must be a JSON object, got {body!r}"]
    try:
        return model_cls._deserialize(body, []), []
    except (TypeError, ValueError, KeyError) as exc:
        return None, [f"{where}: does not deserialize as {model_cls.__name__} ({exc})"]


def endpoint_problems(body: Any) -> list[str]:
    """An ``OnlineEndpoint`` PUT body against the model and the traffic rules."""
    from azure.ai.ml._restclient.arm_ml_service.models import OnlineEndpoint

    model, problems = _deserialize(OnlineEndpoint, body, "onlineEndpoint")
    if model is None:
        return problems
    problems += model_problems(model, "onlineEndpoint")
    properties = body.get("properties") or {}
    problems += _traffic_problems(properties.get("traffic"), "traffic", total=True)
    problems += _traffic_problems(properties.get("mirrorTraffic"), "mirrorTraffic", total=False)
    return problems


def _traffic_problems(traffic: Any, name: str, *, total: bool) -> list[str]:
    if not traffic:
        return []
    where = f"onlineEndpoint.properties.{name}"
    if not isinstance(traffic, dict):
        return [f"{where}: expected a map of deployment name to percent, got {traffic!r}"]
    problems = [
        f"{where}.{key}: {value!r} is not an integer percent 0-100"
        for key, value in traffic.items()
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100
    ]
    if problems:
        return problems
    if total and sum(traffic.values()) != 100:
        problems.append(f"{where}: the shares must sum to 100, got {sum(traffic.values())}")
    if not total:
        problems += [
            f"{where}.{key}: mirror traffic is at most {MAX_MIRROR_PERCENT}%, got {value}"
            for key, value in traffic.items()
            if value > MAX_MIRROR_PERCENT
        ]
    return problems


def deployment_problems(body: Any) -> list[str]:
    """An ``OnlineDeployment`` PUT body against the model and the documented limits."""
    from azure.ai.ml._restclient.arm_ml_service.models import OnlineDeployment

    model, problems = _deserialize(OnlineDeployment, body, "onlineDeployment")
    if model is None:
        return problems
    problems += model_problems(model, "onlineDeployment")
    if problems:
        return problems
    settings = model.properties.request_settings
    if settings is not None:
        timeout = settings.request_timeout
        if timeout is not None and not datetime.timedelta(0) < timeout <= MAX_REQUEST_TIMEOUT:
            problems.append(
                "onlineDeployment.properties.requestSettings.requestTimeout: "
                f"{body['properties']['requestSettings']['requestTimeout']} is not within "
                "(0, 180 s]"
            )
        concurrency = settings.max_concurrent_requests_per_instance
        if concurrency is not None and concurrency < 1:
            problems.append(
                "onlineDeployment.properties.requestSettings.maxConcurrentRequestsPerInstance: "
                f"{concurrency} is below 1"
            )
    capacity = model.sku.capacity if model.sku is not None else None
    if capacity is not None and not 1 <= capacity <= MAX_INSTANCES:
        problems.append(
            f"onlineDeployment.sku.capacity: {capacity} is not within 1-{MAX_INSTANCES}"
        )
    return problems
