"""Move traffic to a newly deployed model step by step, checking health between steps.

The first step happened in the DeployModel request itself. Each later step replaces the
endpoint's traffic split. Before a step is kept the rollout bakes, then checks that the
deployed model is still on the endpoint with replicas available and that predictions
through the endpoint succeed. A failed check shifts all traffic back to the previous
deployed model and undeploys the new one (the automatic rollback); a passed final
check undeploys the previous deployed model (its Model resource is kept for rollback).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from deployer.providers import DeployerError, Progress, State
from deployer_gcp import traffic
from deployer_gcp.api import VertexApi
from deployer_gcp.errors import OperationTimeout
from deployer_gcp.names import seconds

MAX_PROBES = 10


@dataclass
class Outcome:
    """How a rollout ended: ``healthy``, ``failed`` (rolled back) or ``updating`` (timed out)."""

    state: State
    reason: str | None = None
    rolled_back: bool = False


@dataclass
class Rollout:
    """One rollout of ``new_id`` (serving ``version``) on ``endpoint``, replacing ``old_id``."""

    api: VertexApi
    endpoint: str
    new_id: str
    old_id: str | None
    version: str
    previous_version: str | None
    shares: list[int]
    bake_seconds: float
    sample: list[Any] | None
    deadline: float
    progress: Progress
    started: float = field(default_factory=time.monotonic)

    def run(self, first_step_done: bool = True) -> Outcome:
        for index, share in enumerate(self.shares):
            label = f"step {index + 1}/{len(self.shares)} ({share}% to {self.version})"
            if index > 0 or not first_step_done:
                if self._out_of_time():
                    return self._timed_out(f"before {label}")
                self.progress(f"{label}: updating the traffic split")
                self.api.set_traffic(
                    self.endpoint, traffic.split(self.new_id, share, self.old_id, self._others())
                )
            if share < 100 and self.bake_seconds > 0:
                wait = min(self.bake_seconds, max(0.0, self.deadline - time.monotonic()))
                self.progress(f"{label}: baking for {seconds(wait)}")
                time.sleep(wait)
                if wait < self.bake_seconds:
                    return self._timed_out(f"while baking {label}")
            problem = self.check(share)
            if problem:
                return self.abort(f"{label}: {problem}")
            self.progress(f"{label}: healthy")
        return self.promote()

    # -- health ------------------------------------------------------------------------

    def check(self, share: int) -> str | None:
        """What is wrong with the new deployed model at ``share`` percent, or None."""
        endpoint = self.api.get_endpoint(self.endpoint)
        current = {dm.id: dm for dm in endpoint.deployed_models}
        deployed = current.get(self.new_id)
        if deployed is None:
            return f"deployed model {self.new_id} is no longer on the endpoint"
        status = deployed.status
        if status.last_update_time and status.available_replica_count == 0:
            return f"no replica is available: {status.message or 'no status message'}"
        got = dict(endpoint.traffic_split).get(self.new_id, 0)
        if got != share and self.old_id is not None:
            return f"the endpoint sends {got}% of traffic to it, not {share}%"
        if self.sample is None:
            return None
        # Each probe lands on a deployed model by the traffic split; enough probes that
        # a share of N% is expected to see at least one.
        probes = 1 if share >= 100 else min(MAX_PROBES, math.ceil(100 / share))
        return smoke(self.api, self.endpoint, self.sample, probes)

    # -- endings -----------------------------------------------------------------------

    def abort(self, problem: str) -> Outcome:
        """Give all traffic back to the previous deployed model and undeploy the new one."""
        if self.old_id is None:
            return Outcome("failed", f"{problem}; no previous version to roll back to")
        self.progress(f"{problem}; rolling back to {self.previous_version}")
        try:
            self.api.set_traffic(
                self.endpoint, traffic.split(self.old_id, 100, None, [self.new_id])
            )
            self._undeploy(self.new_id)
        except DeployerError as exc:
            return Outcome(
                "failed",
                f"{problem}; the automatic rollback to {self.previous_version} failed: {exc}",
            )
        return Outcome(
            "failed",
            f"{problem}; rolled back automatically: {self.previous_version} serves 100% "
            f"of traffic again and {self.version} was undeployed",
            rolled_back=True,
        )

    def promote(self) -> Outcome:
        """The new model has all the traffic: undeploy every other deployed model."""
        endpoint = self.api.get_endpoint(self.endpoint)
        for deployed in traffic.deployed_models(endpoint):
            if deployed.id == self.new_id:
                continue
            self.progress(f"undeploying {deployed.display_name} (its model is kept for rollback)")
            try:
                self._undeploy(deployed.id)
            except OperationTimeout as exc:
                return Outcome("updating", f"{self.version} serves 100% of traffic, but {exc}")
        return Outcome("healthy")

    def _undeploy(self, deployed_model_id: str) -> None:
        endpoint = self.api.get_endpoint(self.endpoint)
        operation = self.api.undeploy_model(
            self.endpoint, deployed_model_id, traffic.without(endpoint, deployed_model_id)
        )
        self.api.wait_operation(
            operation,
            f"undeploying deployed model {deployed_model_id}",
            max(self.deadline, time.monotonic() + self.api.options.operation_timeout),
            self.progress,
        )

    def _others(self) -> list[str]:
        endpoint = self.api.get_endpoint(self.endpoint)
        return [dm.id for dm in endpoint.deployed_models]

    def _out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def _timed_out(self, where: str) -> Outcome:
        endpoint = self.api.get_endpoint(self.endpoint)
        shares = dict(endpoint.traffic_split)
        seen = ", ".join(
            f"{dm.display_name} {shares.get(dm.id, 0)}%" for dm in traffic.deployed_models(endpoint)
        )
        return Outcome(
            "updating",
            f"timed out after {seconds(time.monotonic() - self.started)} {where}; "
            f"last traffic split: {seen or 'none'}",
        )


def smoke(api: VertexApi, endpoint: str, sample: list[Any], probes: int) -> str | None:
    """Send ``probes`` predictions of ``sample`` through rawPredict; the first problem, or None."""
    from google.api_core import exceptions as gexc

    body = json.dumps({"instances": sample}).encode()
    for attempt in range(probes):
        try:
            answer = api.raw_predict(endpoint, body, "application/json")
        except gexc.GoogleAPIError as exc:
            return f"prediction {attempt + 1}/{probes} failed: {describe(exc)}"
        try:
            predictions = json.loads(answer.data)["predictions"]
        except (ValueError, KeyError, TypeError):
            return f"prediction {attempt + 1}/{probes} returned {answer.data[:200]!r}"
        if len(predictions) != len(sample):
            return (
                f"prediction {attempt + 1}/{probes} returned {len(predictions)} rows "
                f"for {len(sample)}"
            )
    return None


def describe(exc: Exception) -> str:
    """``CODE: message`` of a Google API error (the cause's, for an exhausted retry)."""
    cause = getattr(exc, "cause", None) or exc
    code = getattr(getattr(cause, "grpc_status_code", None), "name", None)
    message = getattr(cause, "message", None) or str(cause)
    return f"{code}: {message}" if code else message
