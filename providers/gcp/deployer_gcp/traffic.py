"""Traffic splits: which deployed model is live, and how each strategy moves traffic.

In a DeployModel request the key ``"0"`` stands for the model being deployed. Splits
always sum to 100; every other deployed model is listed with 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from deployer.providers import Strategy

NEW = "0"


def created(resource: Any) -> float:
    """A resource's create_time as seconds (0 when Vertex left it unset)."""
    stamp = resource.create_time
    return float(stamp.timestamp()) if stamp else 0.0


def deployed_models(endpoint: Any) -> list[Any]:
    """The endpoint's deployed models, oldest first."""
    return sorted(endpoint.deployed_models, key=created)


def live_deployed_model(endpoint: Any) -> Any | None:
    """The deployed model with the most traffic (the older one on a tie), or None."""
    models = deployed_models(endpoint)
    if not models:
        return None
    split = dict(endpoint.traffic_split)
    return max(models, key=lambda dm: split.get(dm.id, 0))


def version_of(deployed_model: Any | None) -> str | None:
    """The release version a deployed model serves (deployer puts it in the display name)."""
    return deployed_model.display_name if deployed_model is not None else None


def find_version(endpoint: Any, version: str) -> Any | None:
    for dm in deployed_models(endpoint):
        if dm.display_name == version:
            return dm
    return None


def steps(strategy: Strategy) -> list[int]:
    """The new version's share of traffic after each step, ending at 100."""
    if strategy.kind == "all-at-once":
        return [100]
    if strategy.kind == "canary":
        return [strategy.percent, 100]
    shares = list(range(strategy.percent, 100, strategy.percent))
    return [*shares, 100]


def split(
    new_id: str, share: int, old_id: str | None, others: Iterable[str] = ()
) -> dict[str, int]:
    """``new_id`` gets ``share``, ``old_id`` the rest, every other deployed model 0."""
    result = {other: 0 for other in others if other not in (new_id, old_id)}
    if old_id is None:
        result[new_id] = 100
        return result
    result[new_id] = share
    result[old_id] = 100 - share
    return result


def without(endpoint: Any, deployed_model_id: str) -> dict[str, int]:
    """The traffic split once ``deployed_model_id`` is gone: its share moves to the live one.

    Empty when nothing would remain, or when the model has no traffic (nothing to move).
    """
    current = dict(endpoint.traffic_split)
    remaining = [dm.id for dm in deployed_models(endpoint) if dm.id != deployed_model_id]
    if not remaining or not current.get(deployed_model_id):
        return {}
    result = {key: value for key, value in current.items() if key in remaining}
    heir = max(remaining, key=lambda key: result.get(key, 0))
    result[heir] = result.get(heir, 0) + current[deployed_model_id]
    return result
