"""How each strategy moves an endpoint's traffic between two deployments (blue/green).

Azure ML endpoints split traffic between named deployments by integer percentages that
sum to 100 (``endpoint.traffic``). A rollout is a list of such mappings, applied in
order, with a bake and a health check after each one but the last:

- all-at-once: ``{new: 100}``
- canary:N:    ``{new: N, old: 100-N}`` → ``{new: 100}``
- linear:N:    ``{new: N, old: 100-N}``, ``{new: 2N, ...}``, ... → ``{new: 100}``

With no previous deployment (the first deploy) every strategy is ``{new: 100}``.
"""

from __future__ import annotations

from deployer.providers import Strategy

Traffic = dict[str, int]


def traffic_steps(strategy: Strategy, new: str, old: str | None) -> list[Traffic]:
    """The traffic mappings a rollout of ``new`` over ``old`` goes through."""
    if old is None or old == new or strategy.kind == "all-at-once":
        return [{new: 100}]
    percent = max(1, min(99, strategy.percent))
    shares = [percent] if strategy.kind == "canary" else list(range(percent, 100, percent))
    return [{new: share, old: 100 - share} for share in shares] + [{new: 100}]


def describe(traffic: Traffic) -> str:
    """``v2 10%, v1 90%`` (largest share first)."""
    ordered = sorted(traffic.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {share}%" for name, share in ordered) or "no traffic"


def live_deployment(traffic: Traffic) -> str | None:
    """The deployment with the largest share of traffic (None if none has any)."""
    serving = {name: share for name, share in traffic.items() if share > 0}
    if not serving:
        return None
    return max(sorted(serving), key=lambda name: serving[name])
