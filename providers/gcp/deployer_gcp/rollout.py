"""Move traffic to a newly deployed model step by step, checking health between steps.

The first step happened in the DeployModel request itself. Each later step replaces the
endpoint's traffic split. Before a step is kept the rollout bakes, then checks that the
deployed model is still on the endpoint with replicas available and that predictions
through the endpoint succeed. A failed check shifts all traffic back to the previous
deployed model and undeploys the new one (the automatic rollback); a passed final
check undeploys the previous deployed model (its Model resource is kept for rollback).

Vertex routes each prediction to a deployed model drawn at random by the traffic split,
so a fixed number of probes can miss a small canary (ten probes miss a 10% canary about
a third of the time). The check sends Predict requests, whose answer names the deployed
model that served it, until the new one has answered; it gives up (and rolls back) only
after enough probes that a healthy canary is missed with probability below
``MISS_PROBABILITY``. A broken canary is therefore never promoted by luck.

With live gates (``Strategy.live``) a bake is watched: every ``interval_seconds`` the
new deployed model's error rate and p99 latency since the step began, read from Cloud
Monitoring (deployer_gcp.monitoring), are compared with the old one's; a worse new
version is rolled back at once, the reason naming both values and the bound.

A rollout that runs out of time is stopped on the cloud: traffic goes back to the
previous deployed model and the new one is undeployed, and the outcome says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployer.providers import DeployerError, Progress, State
from deployer.providers import live as gates
from deployer_gcp import traffic
from deployer_gcp.api import VertexApi
from deployer_gcp.errors import OperationTimeout
from deployer_gcp.names import seconds

if TYPE_CHECKING:
    from deployer_gcp.monitoring import Monitoring

MISS_PROBABILITY = 1e-6  # chance that a healthy canary is not reached by any probe


def probes_for(share: int) -> int:
    """Probes needed so that a ``share``% canary is missed by all with MISS_PROBABILITY."""
    if share >= 100:
        return 1
    return max(1, math.ceil(math.log(MISS_PROBABILITY) / math.log(1 - share / 100)))


@dataclass
class Outcome:
    """How a rollout ended: ``healthy``, ``failed`` (rolled back) or ``updating`` (timed out)."""

    state: State
    reason: str | None = None
    rolled_back: bool = False
    live_gate: dict[str, Any] | None = None  # the failing verdict of a live gate


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
    live: gates.LiveRules | None = None
    monitoring: Monitoring | None = None
    # how a bake waits, and its clock: None is this module's ``time`` (virtual in tests)
    sleep: Callable[[float], None] | None = None
    clock: Callable[[], float] | None = None

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
                stopped = self._bake(wait, label)
                if stopped is not None:
                    return stopped
                if wait < self.bake_seconds:
                    return self._timed_out(f"while baking {label}")
            problem = self.check(share)
            if problem:
                return self.abort(f"{label}: {problem}")
            self.progress(f"{label}: healthy")
        return self.promote()

    # -- live gates --------------------------------------------------------------------

    def _bake(self, wait: float, label: str) -> Outcome | None:
        """Wait ``wait`` seconds; with live gates, watch the step and roll it back (the
        Outcome) when the new version is worse than the old on Cloud Monitoring."""
        sleep = self.sleep or time.sleep
        if self.live is None or self.old_id is None or self.monitoring is None:
            sleep(wait)
            return None
        read = self._announced(
            self.monitoring.reader(self.endpoint, self.new_id, self.old_id), self.live
        )
        try:
            gates.Baker(self.live, sleep=sleep, clock=self.clock or time.monotonic).bake(wait, read)
        except gates.LiveGateFailed as exc:
            return self._live_gate_failed(label, exc.verdict)
        except DeployerError as exc:
            return self.abort(f"{label}: live gate: could not read Cloud Monitoring: {exc}")
        return None

    def _announced(self, read: gates.Reading, rules: gates.LiveRules) -> gates.Reading:
        """``read``, saying each comparison's verdict in the progress output."""

        def announced() -> tuple[gates.Signals | None, gates.Signals]:
            old, new = read()
            verdict = gates.compare(old, new, rules)
            self.progress(f"live gate: {verdict.outcome} ({verdict.reason})")
            return old, new

        return announced

    def _live_gate_failed(self, label: str, verdict: gates.Verdict) -> Outcome:
        problem = f"live gate: {verdict.reason}"
        self.progress(f"{label}: {problem}")
        outcome = self.abort(problem, done=f"rolled back: {self.previous_version} keeps serving")
        outcome.live_gate = verdict.to_dict()
        return outcome

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
        # Each probe lands on a deployed model drawn at random by the traffic split:
        # probe until the new one has answered (see the module docstring).
        return smoke(self.api, self.endpoint, self.sample, self.new_id, probes_for(share))

    # -- endings -----------------------------------------------------------------------

    def abort(self, problem: str, done: str | None = None) -> Outcome:
        """Give all traffic back to the previous deployed model and undeploy the new one;
        ``done`` replaces the reason's note on the rollback."""
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
        done = done or (
            f"rolled back automatically: {self.previous_version} serves 100% "
            f"of traffic again and {self.version} was undeployed"
        )
        return Outcome("failed", f"{problem}; {done}", rolled_back=True)

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
        """Out of time: stop the rollout on the cloud (all traffic back to the previous
        deployed model, the new one undeployed) and say so."""
        endpoint = self.api.get_endpoint(self.endpoint)
        shares = dict(endpoint.traffic_split)
        seen = ", ".join(
            f"{dm.display_name} {shares.get(dm.id, 0)}%" for dm in traffic.deployed_models(endpoint)
        )
        reason = (
            f"timed out after {seconds(time.monotonic() - self.started)} {where}; "
            f"last traffic split: {seen or 'none'}"
        )
        if self.old_id is None:
            return Outcome("updating", reason)
        return self.abort(f"{reason}; the rollout was stopped")


def smoke(api: VertexApi, endpoint: str, sample: list[Any], new_id: str, probes: int) -> str | None:
    """Predict ``sample`` until deployed model ``new_id`` has answered, at most ``probes``
    times; the first problem (a failed or malformed prediction, or ``new_id`` never
    reached), or None."""
    from google.api_core import exceptions as gexc

    for attempt in range(probes):
        try:
            answer = api.predict(endpoint, sample)
        except gexc.GoogleAPIError as exc:
            return f"prediction {attempt + 1} failed: {describe(exc)}"
        rows = len(answer.predictions)
        if rows != len(sample):
            return (
                f"prediction {attempt + 1} (deployed model {answer.deployed_model_id}) "
                f"returned {rows} rows for {len(sample)}"
            )
        if answer.deployed_model_id == new_id:
            return None
    return (
        f"none of {probes} predictions reached deployed model {new_id} (a healthy one "
        f"at this share is missed that often with probability {MISS_PROBABILITY:g})"
    )


def describe(exc: Exception) -> str:
    """``CODE: message`` of a Google API error (the cause's, for an exhausted retry)."""
    cause = getattr(exc, "cause", None) or exc
    code = getattr(getattr(cause, "grpc_status_code", None), "name", None)
    message = getattr(cause, "message", None) or str(cause)
    return f"{code}: {message}" if code else message
