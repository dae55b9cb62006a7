"""The checks a push (and ``plan``) runs before anything changes: the release gates of
deployer.yaml against the new model's recorded metrics and each target's live and
previous versions' (see ``deployer.gates`` and ``deployer.audit.lookup``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer.audit.chain import AuditLog
from deployer.audit.lookup import baseline
from deployer.errors import DeployerError
from deployer.gates import Baseline, GateReport, evaluate, parse_gate

if TYPE_CHECKING:
    from deployer.lockfile import Lock
    from deployer.providers import Provider


def model_metrics(
    lock: Lock | None, model_sha256: str | None
) -> tuple[Mapping[str, Any] | None, str | None]:
    """The metrics deployer.lock records for this model, or None and why not."""
    evaluation = getattr(lock, "evaluation", None) if lock is not None else None
    if not isinstance(evaluation, Mapping):
        return None, "deployer.lock records no evaluation"
    if not model_sha256 or evaluation.get("model_sha256") != model_sha256:
        recorded = str(evaluation.get("model_sha256") or "none")[:12]
        return None, (
            f"deployer.lock's evaluation is of another model (sha256 {recorded}, "
            f"this model {(model_sha256 or 'unknown')[:12]}): it is stale"
        )
    metrics = evaluation.get("metrics")
    return (metrics if isinstance(metrics, Mapping) else {}), None


def live_version(provider: Provider) -> tuple[str | None, str | None]:
    """(the version ``provider`` serves now or None, the error when its status failed)."""
    try:
        status = provider.status()
    except DeployerError as exc:
        return None, exc.message
    return (status.version if status.state != "absent" else None), None


def baselines(providers: Mapping[str, Provider], folder: Path) -> list[Baseline]:
    """Each target's live and previous versions and their recorded metrics (statuses
    read in parallel, read-only); a target whose status fails has an ``error``, and so
    has every target when the audit log does not verify (its metrics could be forged)."""
    log = AuditLog(folder)
    checked = log.verify()
    if not checked.ok:
        error = (
            f"{log.path} does not verify (line {checked.bad_line}: {checked.problem}), so the "
            "metrics it records cannot be trusted; see `deployer audit verify`"
        )
        return [Baseline(name, error=error) for name in providers]
    records = log.records()
    with ThreadPoolExecutor(max_workers=max(1, len(providers))) as pool:
        lives = list(pool.map(live_version, providers.values()))
    return [
        baseline(records, name, live) if error is None else Baseline(name, error=error)
        for name, (live, error) in zip(providers, lives, strict=True)
    ]


def check_gates(
    texts: Sequence[str],
    lock: Lock | None,
    model_sha256: str | None,
    providers: Mapping[str, Provider],
    folder: Path,
    override: str | None = None,
) -> GateReport:
    """Every gate's result; ``override`` (the reason) lets failures through, recorded."""
    if not texts:
        return GateReport((), override)
    gates = [parse_gate(text) for text in texts]
    metrics, missing = model_metrics(lock, model_sha256)
    relative = any(g.reference != "number" for g in gates)
    found = baselines(providers, folder) if relative else []
    return GateReport(tuple(evaluate(gates, metrics, found, missing=missing)), override)
