"""Parallel multi-target push, the failure policy and the journal, with protocol-level
providers (the cloud providers' own tests drive the real SDKs against fakes)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest

from deployer.errors import DeployerError, UsageError
from deployer.image.build import Image
from deployer.orchestrate import Journal, PushResult, push_all, push_options, push_release
from deployer.providers import (
    DEFAULT_ROLLOUT_ALLOWANCE,
    Backend,
    Change,
    Deployment,
    Invocation,
    Plan,
    Release,
    Status,
    Strategy,
)
from deployer.router import manifest

IMAGE = Image("iris:abc", "sha256:" + "1" * 64, 1, {"dev.deployer.model.sha256": "2" * 64})
RELEASE = Release("iris", IMAGE, [[0, 0], [0, 0]], {})
NEW = RELEASE.version


class MemoryTarget:
    """A target whose 'cloud' is a list of versions; ``fail_at`` picks a stage to break."""

    name: ClassVar[str] = "memory"

    def __init__(
        self,
        target: str,
        live: str | None = None,
        fail_at: str | None = None,
        together: threading.Barrier | None = None,
    ) -> None:
        self.target = target
        self.history: list[str] = [live] if live else []
        self.fail_at = fail_at
        self.together = together  # deploy waits there until every target's deploy has begun
        self.calls: list[str] = []

    @property
    def live(self) -> str | None:
        return self.history[-1] if self.history else None

    def _maybe_fail(self, stage: str) -> None:
        if self.fail_at == stage:
            raise DeployerError(f"{self.target} broke at {stage}")

    def plan(self, release: Release) -> Plan:
        action = "keep" if self.live == release.version else "update"
        return Plan(self.target, [Change(action, "endpoint")])  # type: ignore[arg-type]

    def publish(self, image: Image, progress: Any) -> str:
        self.calls.append("publish")
        self._maybe_fail("publish")
        return f"registry/{image.id}"

    def deploy(self, release: Release, ref: str, strategy: Strategy, progress: Any) -> Deployment:
        self.calls.append(f"deploy {strategy}")
        if self.together is not None:
            self.together.wait()  # BrokenBarrierError after its timeout: deploys ran one by one
        previous = self.live
        if previous == release.version:
            return Deployment(self.target, release.version, previous, changed=False)
        self.history.append(release.version)
        self._maybe_fail("deploy")  # fails after changing the cloud
        return Deployment(self.target, release.version, previous, changed=True)

    def wait(self, deployment: Deployment, timeout: float, progress: Any) -> Status:
        if self.fail_at == "wait":
            return Status(self.target, "failed", self.live, reason="FailureReason: OOM at start")
        return self.status()

    def status(self) -> Status:
        if self.live is None:
            return Status(self.target, "absent")
        return Status(self.target, "healthy", self.live, url=f"mem://{self.target}")

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Invocation:
        self.calls.append("invoke")
        if self.fail_at == "smoke":
            return Invocation(500, b'{"error":"boom"}', "application/json")
        rows = orjson.loads(body)
        return Invocation(200, orjson.dumps({"predictions": [0] * len(rows)}), "application/json")

    def rollback(self, progress: Any) -> Deployment:
        self.calls.append("rollback")
        current = self.history.pop()
        return Deployment(self.target, self.live or "", current, changed=True)

    def destroy(self, progress: Any) -> list[str]:
        self.calls.append("destroy")
        self.history.clear()
        return ["endpoint"]

    def route(self) -> Backend:
        return Backend(self.target, self.name, f"mem://{self.target}")


def run(targets: list[MemoryTarget], policy: str = "rollback") -> tuple[list[Any], Journal]:
    journal = Journal()
    providers: dict[str, Any] = {t.target: t for t in targets}
    results = push_all(providers, RELEASE, Strategy(), policy, 60, journal)  # type: ignore[arg-type]
    return results, journal


def test_targets_deploy_in_parallel_and_all_succeed() -> None:
    # every deploy waits for the other two to begin: only parallel deploys can all pass
    together = threading.Barrier(3, timeout=60)
    targets = [MemoryTarget(n, "old", together=together) for n in ("aws", "gcp", "azure")]
    results, journal = run(targets)
    assert [r.outcome for r in results] == ["updated"] * 3, [r.error for r in results]
    assert all(t.live == NEW for t in targets)
    assert not together.broken
    assert [r.previous_version for r in results] == ["old"] * 3
    assert any(e.step == "smoke test passed" for e in journal.for_target("gcp"))


def test_one_failure_rolls_back_the_others_and_removes_a_new_target() -> None:
    aws, gcp, azure = (
        MemoryTarget("aws", "old"),
        MemoryTarget("gcp", "old", "smoke"),
        MemoryTarget("azure"),
    )
    results, journal = run([aws, gcp, azure], policy="rollback")
    outcomes = {r.target: r.outcome for r in results}
    assert outcomes == {"aws": "rolled back", "gcp": "rolled back", "azure": "removed"}
    assert aws.live == "old" and gcp.live == "old" and azure.live is None
    assert "smoke prediction answered 500" in (results[1].error or "")
    steps = [e.step for e in journal.for_target("aws")]
    assert steps[-2:] == ["rollback", "rolled back"]


def test_keep_leaves_the_others_new_and_the_release_degraded() -> None:
    aws, gcp, azure = (
        MemoryTarget("aws", "old"),
        MemoryTarget("gcp", "old", "wait"),
        MemoryTarget("azure", "old"),
    )
    results, _ = run([aws, gcp, azure], policy="keep")
    assert aws.live == NEW and azure.live == NEW
    assert gcp.live == "old"  # the failed one goes back automatically
    assert "FailureReason: OOM at start" in (results[1].error or "")
    result = PushResult("iris", NEW, {}, results, policy="keep")
    assert result.status == "degraded" and not result.ok


def test_a_deploy_that_fails_after_changing_the_cloud_is_detected_and_undone() -> None:
    aws, gcp = MemoryTarget("aws", "old"), MemoryTarget("gcp", "old", "deploy")
    results, _ = run([aws, gcp])
    assert gcp.live == "old" and aws.live == "old"
    assert results[1].outcome == "rolled back"


def test_a_failure_before_any_change_is_not_undone() -> None:
    aws = MemoryTarget("aws", "old", fail_at="publish")
    results, _ = run([aws])
    assert results[0].outcome == "failed"
    assert "rollback" not in aws.calls and "destroy" not in aws.calls


def test_re_push_of_the_live_version_changes_nothing() -> None:
    targets = [MemoryTarget("aws", live=NEW)]
    results, _ = run(targets)
    assert results[0].outcome == "unchanged"
    assert targets[0].history == [NEW]


def test_result_serialises_with_status_journal_and_per_target_ok() -> None:
    results, journal = run([MemoryTarget("aws", "old")])
    result = PushResult("iris", NEW, IMAGE.to_dict(), results, journal=journal.entries)
    data = json.loads(json.dumps(result.to_dict(), default=str))
    assert data["ok"] is True and data["status"] == "succeeded"
    assert data["targets"][0]["ok"] is True
    assert data["journal"][0]["target"] == "aws"


def test_unknown_policy_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        run([MemoryTarget("aws")], policy="pray")


@pytest.mark.parametrize(
    ("text", "kind", "percent"),
    [("all-at-once", "all-at-once", 100), ("canary:10", "canary", 10), ("linear:25", "linear", 25)],
)
def test_strategy_parsing(text: str, kind: str, percent: int) -> None:
    strategy = Strategy.parse(text, bake_seconds=5)
    assert (strategy.kind, strategy.percent, strategy.bake_seconds) == (kind, percent, 5)
    assert str(strategy) == text


@pytest.mark.parametrize("text", ["canary", "canary:0", "canary:100", "blue-green", "linear:x"])
def test_bad_strategies_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        Strategy.parse(text)


def test_journal_is_thread_safe() -> None:
    journal = Journal()
    threads = [
        threading.Thread(target=lambda n=n: [journal.record(f"t{n}", "step") for _ in range(500)])
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(journal.entries) == 2000


# -- a whole push, as Project.push runs it ---------------------------------------------


class RoutedTarget(MemoryTarget):
    def route(self) -> Backend:
        return Backend(self.target, self.name, f"http://127.0.0.1:9/{self.target}")


def push_release_of(
    targets: list[RoutedTarget], tmp_path: Path, **options: Any
) -> tuple[PushResult, list[str]]:
    """push_release with the journal and router.yaml in ``tmp_path``; also returns what
    happened in order (the build, then each provider call)."""
    order: list[str] = []

    def make_release() -> Release:
        order.append(f"build (calls so far: {sum(len(t.calls) for t in targets)})")
        return RELEASE

    result = push_release(
        "iris",
        dict[str, Any]({t.target: t for t in targets}),
        make_release,
        strategy=Strategy.parse("canary:10"),
        policy=options.pop("policy", "rollback"),
        journal_dir=tmp_path / "journal",
        router_file=tmp_path / "router.yaml",
        target_options={t.target: {"provider": "memory", "region": "here"} for t in targets},
        **options,
    )
    return result, order


def test_push_release_builds_once_then_pushes_and_writes_journal_and_router_yaml(
    tmp_path: Path,
) -> None:
    targets = [RoutedTarget("aws", "old"), RoutedTarget("gcp")]
    result, order = push_release_of(targets, tmp_path)
    assert order == ["build (calls so far: 0)"]
    assert result.status == "succeeded" and result.strategy == "canary:10"
    assert result.version == NEW and result.image == IMAGE.to_dict()
    assert [t.outcome for t in result.targets] == ["updated", "updated"]
    assert result.seconds >= 0 and result.journal and result.journal[0].seconds >= 0
    (journal_file,) = (tmp_path / "journal").iterdir()
    assert journal_file.name.endswith(f"-{NEW}.json")
    journal = json.loads(journal_file.read_text())  # written before router.yaml
    expected = json.loads(json.dumps(result.to_dict(), default=str))
    assert journal == {**expected, "router_manifest": None}
    assert (
        journal["status"] == "succeeded" and journal["journal"][-1]["step"] == "smoke test passed"
    )
    assert result.router_manifest == str(tmp_path / "router.yaml")
    written = manifest.load(tmp_path / "router.yaml")
    assert [(b.name, b.url) for b in written.backends] == [
        ("aws", "http://127.0.0.1:9/aws"),
        ("gcp", "http://127.0.0.1:9/gcp"),
    ]
    assert written.backends[0].target == {"provider": "memory", "region": "here"}


def test_a_failed_push_writes_its_journal_but_leaves_router_yaml_alone(tmp_path: Path) -> None:
    result, _ = push_release_of([RoutedTarget("aws", "old", fail_at="smoke")], tmp_path)
    assert result.status == "rolled back" and result.router_manifest is None
    assert not (tmp_path / "router.yaml").exists()
    (journal_file,) = (tmp_path / "journal").iterdir()
    assert json.loads(journal_file.read_text())["status"] == "rolled back"


def test_a_dry_run_plans_and_changes_nothing(tmp_path: Path) -> None:
    targets = [RoutedTarget("aws", NEW), RoutedTarget("gcp")]
    result, order = push_release_of(targets, tmp_path, dry_run=True)
    assert len(order) == 1 and result.dry_run and result.status == "planned"
    assert [p["changes"][0]["action"] for p in result.plans] == ["keep", "update"]
    assert [t.calls for t in targets] == [[], []] and result.targets == []
    assert not (tmp_path / "journal").exists() and not (tmp_path / "router.yaml").exists()


def test_push_options_are_checked_before_anything_runs() -> None:
    assert push_options("linear:25", 30, "keep") == (Strategy.parse("linear:25", 30), "keep")
    with pytest.raises(UsageError, match="unknown --on-failure 'pray'"):
        push_options("all-at-once", 0, "pray")
    with pytest.raises(UsageError):
        push_options("sideways:5", 0, "rollback")


class TimedTarget(MemoryTarget):
    """A MemoryTarget that records the timeout ``wait`` was given."""

    def __init__(self, target: str, allowance: Any = None) -> None:
        super().__init__(target, "old")
        self.timeouts: list[float] = []
        if allowance is not None:
            self.rollout_allowance_seconds = allowance

    def wait(self, deployment: Deployment, timeout: float, progress: Any) -> Status:
        self.timeouts.append(timeout)
        return super().wait(deployment, timeout, progress)


def _push(targets: list[MemoryTarget], strategy: Strategy, **kwargs: Any) -> PushResult:
    providers: dict[str, Any] = {t.target: t for t in targets}
    return push_release(
        "iris", providers, lambda: RELEASE, strategy=strategy, policy="rollback", **kwargs
    )


def test_push_timeout_is_derived_from_the_strategy_and_the_bake() -> None:
    # linear:10 with SageMaker's 300 s bake needs 10 x 300 s of bake alone: more than the
    # former constant 1800 s; each target adds its own provisioning allowance per step
    plain, quick = TimedTarget("aws"), TimedTarget("k8s", allowance=30)
    result = _push([plain, quick], Strategy.parse("linear:10", 300))
    assert result.ok, [t.error for t in result.targets]
    assert plain.timeouts == [10 * (300 + DEFAULT_ROLLOUT_ALLOWANCE)]
    assert quick.timeouts == [10 * (300 + 30)]
    assert Strategy.parse("canary:10", 60).rollout_seconds(0) == 120
    assert Strategy.parse("linear:30").steps == 4


def test_an_unusable_allowance_falls_back_to_the_default() -> None:
    odd = TimedTarget("odd", allowance="fast")
    _push([odd], Strategy())
    assert odd.timeouts == [DEFAULT_ROLLOUT_ALLOWANCE]


def test_a_timeout_shorter_than_the_bakes_is_refused_before_the_build() -> None:
    built: list[str] = []

    def make() -> Release:
        built.append("build")
        return RELEASE

    target = TimedTarget("aws")
    with pytest.raises(UsageError) as caught:
        push_release(
            "iris",
            {"aws": target},
            make,
            strategy=Strategy.parse("linear:10", 300),
            policy="rollback",
            timeout=1800,
        )  # type: ignore[dict-item]
    message = str(caught.value)
    assert "1800 s" in message and "3000 s" in message and "9000 s" in message
    assert built == [] and target.calls == []


def test_a_given_timeout_long_enough_is_used_as_is() -> None:
    target = TimedTarget("aws")
    assert _push([target], Strategy.parse("canary:10", 60), timeout=500).ok
    assert target.timeouts == [500]


def test_dry_run_plans_say_the_push_timeout() -> None:
    target = TimedTarget("aws", allowance=100)
    result = _push([target], Strategy.parse("canary:20", 50), dry_run=True)
    assert result.plans[0]["timeout_seconds"] == 2 * (50 + 100)
    assert result.plans[0]["strategy"] == "canary:20"
    assert target.timeouts == []


class LimitedTarget(RoutedTarget):
    """A provider declaring its platform's invoke limits (Vertex-like: 1.5 MB; a 60 s answer)."""

    request_timeout_seconds: ClassVar[float] = 60.0
    max_request_bytes: ClassVar[int] = 1572864


def test_router_yaml_gets_each_backends_limits_from_its_provider(tmp_path: Path) -> None:
    targets = [LimitedTarget("gcp", "old"), RoutedTarget("k8s", "old")]
    push_release_of(targets, tmp_path)
    gcp, k8s = manifest.load(tmp_path / "router.yaml").backends
    assert (gcp.timeout, gcp.max_body_mb, gcp.body_bytes) == (60.0, 1.5, 1572864)
    assert (k8s.timeout, k8s.max_body_mb) == (None, None)  # the router's own settings
    # a value set by hand in router.yaml wins over the provider's on the next push
    text = (tmp_path / "router.yaml").read_text()
    (tmp_path / "router.yaml").write_text(text.replace("timeout: 60.0", "timeout: 20.0"))
    for target in targets:
        target.history.append("older")
    push_release_of(targets, tmp_path)
    gcp, _ = manifest.load(tmp_path / "router.yaml").backends
    assert (gcp.timeout, gcp.max_body_mb) == (20.0, 1.5)


def test_plan_text_says_the_push_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    from deployer import output

    monkeypatch.setattr(output, "out", Console(highlight=False, no_color=True, width=120))
    result = _push(
        [TimedTarget("aws", allowance=100)], Strategy.parse("linear:50", 20), dry_run=True
    )
    output.render_plans(result.plans)
    assert "push timeout 240 s (linear:50)" in capsys.readouterr().out


class SelfHealingTarget(MemoryTarget):
    """A platform that rolls a failed update back by itself (``honest``), or only says
    it did (the new version is in fact still live)."""

    def __init__(self, target: str, honest: bool = True) -> None:
        super().__init__(target, "old")
        self.honest = honest

    def wait(self, deployment: Deployment, timeout: float, progress: Any) -> Status:
        if self.honest:
            self.history.pop()
        reason = "alarm 5xx fired; the platform rolled back"
        return Status(self.target, "failed", "old", reason=reason, details={"rolled_back": True})


def test_a_cloud_rollback_is_journalled_and_not_undone_again() -> None:
    aws, gcp = SelfHealingTarget("aws"), MemoryTarget("gcp", "old")
    results, journal = run([aws, gcp])
    assert [(r.outcome, r.live_version) for r in results] == [
        ("rolled back", "old"),
        ("rolled back", "old"),
    ]
    steps = [(e.step, e.detail) for e in journal.for_target("aws")]
    assert steps[-2:] == [
        ("failed", "not healthy (failed): alarm 5xx fired; the platform rolled back"),
        ("rolled back by the cloud", "old"),
    ]
    assert "rollback" not in aws.calls and "invoke" not in aws.calls
    assert "rollback" in gcp.calls  # the policy still undoes the target that took it


def test_a_cloud_that_only_says_it_rolled_back_is_undone_and_reported_as_is() -> None:
    aws = SelfHealingTarget("aws", honest=False)
    results, _ = run([aws], policy="keep")
    # keep: a failed target with a previous version goes back; the live version decides
    assert "rollback" in aws.calls and aws.live == "old"
    assert (results[0].outcome, results[0].live_version) == ("rolled back", "old")
    aws = SelfHealingTarget("aws", honest=False)
    aws.history = []  # nothing before: keep leaves it, and it is not "rolled back"
    results, _ = run([aws], policy="keep")
    assert (results[0].outcome, results[0].live_version) == ("failed", NEW)
