"""A target's side of the alerts: which format its platform reads and what the alerts
watch there (the scope), from its provider's optional ``alerts()`` capability.

A provider that has it returns an object with ``format`` (a name of
``render.FORMATS``), ``scope`` (``Mapping[str, str]``: e.g. SageMaker's ``EndpointName``,
``VariantName``) and, optionally, ``apply(document) -> list[str]`` (creates or updates the
rendered alarms, returns their names; raises a DeployerError naming what failed). Providers
need not import this package: the protocol is duck-typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from deployer.alerting.render import DEFAULT_FORMATS


@runtime_checkable
class TargetAlerts(Protocol):
    """What ``provider.alerts()`` returns (``apply`` optional, see the module)."""

    format: str
    scope: Mapping[str, str]


def target_alerts(provider: Any) -> TargetAlerts | None:
    """The provider's alerts capability, or None when it has none."""
    hook = getattr(provider, "alerts", None)
    return hook() if callable(hook) else None


def format_and_scope(provider: Any, kind: str) -> tuple[str | None, dict[str, str]]:
    """The format a target of provider ``kind`` reads (None: unknown) and its scope."""
    found = target_alerts(provider)
    if found is None:
        return DEFAULT_FORMATS.get(kind), {}
    return found.format, dict(found.scope)
