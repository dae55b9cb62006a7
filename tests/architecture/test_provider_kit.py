"""The conformance kit itself: an in-memory provider passes every check, and each check
fails the provider that breaks its rule (so a provider passing the kit means something)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from deployer.errors import DeployerError, UsageError
from deployer.providers import (
    LABEL_PROJECT,
    LABEL_TARGET,
    LABEL_VERSION,
    Backend,
    Change,
    Deployment,
    InvalidPlugin,
    Invocation,
    Plan,
    Progress,
    ProjectInfo,
    Release,
    Status,
    Strategy,
    Target,
    check_plugin,
    limit,
    testing,
)

SECRET = "memory-cloud-secret-31f7"


class Cloud:
    """The fake: resources by id with their labels, the writes it received, failures."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, str]] = {}
        self.writes: list[str] = []
        self.failing: set[str] = set()

    def put(self, key: str, labels: dict[str, str]) -> None:
        self.writes.append(f"put {key}")
        self.resources[key] = labels

    def delete(self, key: str) -> None:
        self.writes.append(f"delete {key}")
        del self.resources[key]


class MemoryProvider:
    """A correct provider on Cloud; ``breaks`` names the rule a variant breaks."""

    name: ClassVar[str] = "memory"
    managed: ClassVar[bool] = False
    default_router_auth: ClassVar[str | None] = None
    cloud: ClassVar[Cloud]
    breaks: ClassVar[str] = ""

    def __init__(self, target: Target, project: ProjectInfo) -> None:
        self.target, self.project = target.name, project.name
        self.endpoint = f"endpoint {project.name}-{target.name}"

    def _labels(self, **extra: str) -> dict[str, str]:
        return {LABEL_PROJECT: self.project, LABEL_TARGET: self.target, **extra}

    def _live(self) -> dict[str, str] | None:
        return self.cloud.resources.get(self.endpoint)

    def plan(self, release: Release) -> Plan:
        if self.breaks == "plan":
            self.cloud.put(f"model {self.project}-{self.target}-{release.version}", {})
        live = self._live()
        same = live is not None and live[LABEL_VERSION] == release.version
        action = "keep" if same else "update"
        return Plan(self.target, [Change(action, self.endpoint, f"serve {release.version}")])

    def publish(self, image: Any, progress: Progress) -> str:
        return image.ref  # type: ignore[no-any-return]

    def deploy(
        self, release: Release, image_ref: str, strategy: Strategy, progress: Progress
    ) -> Deployment:
        live = self._live()
        previous = live[LABEL_VERSION] if live else None
        if previous == release.version and self.breaks != "second-push":
            return Deployment(self.target, release.version, previous, changed=False)
        progress(
            f"deploying {release.version}" + (f" with {SECRET}" if self.breaks == "leak" else "")
        )
        self.cloud.put(f"model {self.project}-{self.target}-{release.version}", self._labels())
        if release.version in self.cloud.failing:
            if self.breaks == "failure" and live is not None:
                self.cloud.delete(self.endpoint)
            return Deployment(self.target, release.version, previous, True, {"failed": True})
        labels = self._labels(**{LABEL_VERSION: release.version})
        if previous:
            labels["previous"] = previous
        self.cloud.put(self.endpoint, labels)
        return Deployment(self.target, release.version, previous, changed=True)

    def wait(self, deployment: Deployment, timeout: float, progress: Progress) -> Status:
        if deployment.details.get("failed"):
            now = self.status()
            return Status(self.target, "failed", now.version, reason="the new version crashed")
        return self.status()

    def status(self) -> Status:
        live = self._live()
        if live is None:
            return Status(self.target, "absent")
        return Status(self.target, "healthy", live[LABEL_VERSION], f"http://{self.endpoint}")

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Invocation:
        return Invocation(200, b"[0]", "application/json")

    def rollback(self, progress: Progress) -> Deployment:
        live = self._live()
        if live is None or "previous" not in live:
            raise UsageError(f"{self.target} has no previous version to roll back to")
        current, previous = live[LABEL_VERSION], live["previous"]
        if self.breaks != "rollback":
            self.cloud.put(self.endpoint, {**live, LABEL_VERSION: previous, "previous": current})
        return Deployment(self.target, previous, current, changed=True)

    def destroy(self, progress: Progress) -> list[str]:
        removed = []
        for key, labels in list(self.cloud.resources.items()):
            mine = labels.get(LABEL_PROJECT) == self.project and (
                labels.get(LABEL_TARGET) == self.target or self.breaks == "destroy"
            )
            if mine:
                self.cloud.delete(key)
                removed.append(key)
        if self.breaks == "destroy" and not removed:
            raise DeployerError("nothing to destroy")
        return removed

    def route(self) -> Backend:
        return Backend(self.target, self.name, f"http://{self.endpoint}")


class StrategyProvider(MemoryProvider):
    """MemoryProvider whose plan takes the strategy (the protocol since plan_of): it
    refuses a canary, as a platform whose fleet cannot hold one does."""

    def plan(self, release: Release, strategy: Strategy | None = None) -> Plan:
        plan = super().plan(release)
        refused = strategy is not None and (
            strategy.kind == "canary" or self.breaks == "refuses-all-at-once"
        )
        if self.breaks == "plan-strategy-writes" and strategy is not None:
            self.cloud.put(f"probe {self.project}-{self.target}", {})
        problems = [f"{self.endpoint}: {strategy} cannot run on 1 instance"] if refused else []
        return Plan(plan.target, plan.changes, problems)


def rig_for(
    breaks: str = "", skip: dict[str, str] | None = None, base: type = MemoryProvider
) -> testing.Rig:
    cloud = Cloud()
    provider = type("Variant", (base,), {"cloud": cloud, "breaks": breaks})
    return testing.Rig(
        make=lambda project, target: provider(Target(target, "memory", {}), ProjectInfo(project)),
        image_ref=lambda release: f"registry.test/{release.project}@{release.image.id}",
        inventory=lambda: {k: dict(v) for k, v in cloud.resources.items()},
        writes=lambda: list(cloud.writes),
        fail_deploy=lambda release, ref: cloud.failing.add(release.version),
        secrets=lambda: [SECRET],
        skip=skip or {},
    )


def test_the_memory_provider_is_a_valid_plugin() -> None:
    check_plugin(MemoryProvider, "memory")


@pytest.mark.parametrize("check", testing.CHECKS, ids=testing.check_id)
def test_a_correct_provider_passes_every_check(check: testing.Check) -> None:
    testing.run(check, rig_for())


@pytest.mark.parametrize(
    ("breaks", "check"),
    [
        ("plan", testing.plan_changes_nothing),
        ("second-push", testing.second_push_changes_nothing),
        ("failure", testing.failed_deploy_keeps_previous),
        ("rollback", testing.rollback_returns_to_previous),
        ("destroy", testing.destroy_is_scoped_and_idempotent),
        ("leak", testing.credentials_stay_out_of_output),
    ],
)
def test_each_check_fails_the_provider_breaking_its_rule(breaks: str, check: testing.Check) -> None:
    with pytest.raises(AssertionError):
        testing.run(check, rig_for(breaks))


@pytest.mark.parametrize("check", testing.CHECKS, ids=testing.check_id)
def test_a_provider_whose_plan_takes_the_strategy_passes_every_check(
    check: testing.Check,
) -> None:
    testing.run(check, rig_for(base=StrategyProvider))


@pytest.mark.parametrize("breaks", ["refuses-all-at-once", "plan-strategy-writes"])
def test_plan_with_a_strategy_is_checked_too(breaks: str) -> None:
    with pytest.raises(AssertionError):
        testing.run(testing.plan_changes_nothing, rig_for(breaks, base=StrategyProvider))


def test_skips_are_explicit_and_give_their_reason() -> None:
    reason = "the platform keeps no previous version"
    rig = rig_for(skip={"rollback_returns_to_previous": reason})
    with pytest.raises(pytest.skip.Exception, match=reason):
        testing.run(testing.rollback_returns_to_previous, rig)
    testing.run(testing.plan_changes_nothing, rig)  # the others still run
    with pytest.raises(ValueError, match="unknown checks"):
        testing.run(testing.plan_changes_nothing, rig_for(skip={"rollback": reason}))
    with pytest.raises(ValueError, match="needs a reason"):
        testing.run(
            testing.rollback_returns_to_previous,
            rig_for(skip={"rollback_returns_to_previous": " "}),
        )


def test_optional_limits_must_be_positive_numbers() -> None:
    class Declares(MemoryProvider):
        rollout_allowance_seconds = 120
        request_timeout_seconds = 60.0
        max_request_bytes = 4 * 1024 * 1024

    check_plugin(Declares, "memory")

    class PerTarget(MemoryProvider):  # a limit that depends on the target's options
        @property
        def request_timeout_seconds(self) -> float:
            return 180.0

    check_plugin(PerTarget, "memory")
    provider = PerTarget(Target("t", "memory", {}), ProjectInfo("iris"))
    assert limit(provider, "request_timeout_seconds") == 180.0

    class Wrong(MemoryProvider):
        rollout_allowance_seconds = "soon"
        max_request_bytes = 1.5  # bytes are an int

    with pytest.raises(InvalidPlugin) as caught:
        check_plugin(Wrong, "memory")
    assert "`rollout_allowance_seconds` must be a positive number, not 'soon'" in str(caught.value)
    assert "`max_request_bytes` must be a positive number, not 1.5" in str(caught.value)
