"""One release to three clouds at once, one of them failing: the failure policy end to end.

The project has targets ``aws`` (SageMaker), ``gcp`` (Vertex AI) and ``azure`` (Azure ML),
each on its provider's own fake driven by the real SDK over the wire, with real
registries and real containers of the image behind each cloud's invoke path. Version A
goes to all three; then version B (the iris model retrained with another C) goes out
while one cloud refuses it:

- ``on_failure="rollback"``: the two clouds that took B go back to A, the failed one
  stays on A, and the release is "rolled back";
- ``on_failure="keep"``: the two others stay on B, the failed one stays on A, and the
  release is "degraded".

What is live is always asked of the clouds themselves (``status().version``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from aws_fake import Script

from deployer import Project
from deployer.orchestrate import JournalEntry, Policy, PushResult

if TYPE_CHECKING:
    from conftest import MultiCloud

pytestmark = pytest.mark.docker

TARGETS = ["aws", "gcp", "azure"]
TIMEOUT = 120.0
MODEL_B = "multicloud-b/model.joblib"
VERTEX_REASON = "Quota exceeded for aiplatform.googleapis.com/custom_model_serving_cpus"
AWS_REASON = "The primary container for production variant AllTraffic did not pass the ping"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def model_b(iris_project: Project) -> Iterator[str]:
    """Version B: the iris pipeline retrained with C=0.5, beside the session's project."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    path = iris_project.root / MODEL_B
    path.parent.mkdir(exist_ok=True)
    features, labels = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500))
    joblib.dump(model.fit(features, labels), path)
    yield MODEL_B
    path.unlink(missing_ok=True)
    path.parent.rmdir()


# -- helpers -----------------------------------------------------------------------------


def push(project: Project, on_failure: Policy = "rollback") -> PushResult:
    """``deployer push --to aws,gcp,azure --on-failure POLICY``, fast polling, no journal file."""
    return project.push(TARGETS, on_failure=on_failure, timeout=TIMEOUT, journal_dir=None)


def live_versions(project: Project) -> dict[str, str | None]:
    """What each cloud itself reports as live."""
    return {status.target: status.version for status in project.status(TARGETS)}


def outcomes(result: PushResult) -> dict[str, str]:
    """Each target's outcome: updated, unchanged, failed, rolled back or removed."""
    return {t.target: t.outcome for t in result.targets}


def steps(result: PushResult, target: str) -> list[tuple[str, str]]:
    """``target``'s journal as (step, detail) pairs, in order."""
    return [(e.step, e.detail) for e in result.journal if e.target == target]


def first(journal: list[JournalEntry], target: str, names: tuple[str, ...]) -> float:
    """When ``target`` first recorded one of the steps ``names``."""
    return min(e.seconds for e in journal if e.target == target and e.step in names)


def assert_started_together(result: PushResult) -> None:
    """Every target started (read its live version) before any target finished."""
    starts = {t: first(result.journal, t, ("live before",)) for t in TARGETS}
    ends = {t: first(result.journal, t, ("smoke test passed", "failed")) for t in TARGETS}
    assert max(starts.values()) < min(ends.values()), (starts, ends)


def assert_deployed_together(result: PushResult, targets: list[str]) -> None:
    """Each of ``targets`` started its deploy before any of them finished waiting.

    Only for targets that reached their smoke test: a cloud that refuses the release at
    once may finish before the others even start deploying.
    """
    deploys = {t: first(result.journal, t, ("deploy",)) for t in targets}
    waited = {t: first(result.journal, t, ("smoke test",)) for t in targets}
    assert max(deploys.values()) < min(waited.values()), (deploys, waited)


def push_version_a(multicloud: MultiCloud) -> tuple[Project, str]:
    """Version A on all three clouds; returns the project and A."""
    project = multicloud.project("model.joblib")
    result = push(project)
    assert result.status == "succeeded", [(t.target, t.error) for t in result.targets]
    assert outcomes(result) == dict.fromkeys(TARGETS, "updated")
    assert live_versions(project) == dict.fromkeys(TARGETS, result.version)
    assert_started_together(result)
    return project, result.version


def assert_predictions(project: Project) -> None:
    """The iris rows answered through every cloud's own invoke path."""
    for target in TARGETS:
        answer = project.predict(target, orjson.dumps(ROWS))
        assert answer.status == 200, (target, answer.body)
        assert orjson.loads(answer.body)["predictions"] == [0, 2], target


def error_of(result: PushResult, target: str) -> str:
    """The error recorded for ``target`` ("" when none)."""
    (found,) = [t for t in result.targets if t.target == target]
    return found.error or ""


# -- the quality bar ---------------------------------------------------------------------


def test_rollback_puts_every_cloud_back_when_vertex_refuses_b(
    multicloud: MultiCloud, model_b: str, iris_image: Any
) -> None:
    project_a, version_a = push_version_a(multicloud)
    assert version_a == iris_image.version  # the session's build, reused
    multicloud.clouds.vertex.fail_deploy(VERTEX_REASON)

    result = push(multicloud.project(model_b), on_failure="rollback")
    version_b = result.version
    assert version_b != version_a
    assert result.status == "rolled back" and not result.ok
    assert outcomes(result) == {"aws": "rolled back", "gcp": "failed", "azure": "rolled back"}
    assert VERTEX_REASON in error_of(result, "gcp")
    for outcome in result.targets:
        assert (outcome.previous_version, outcome.live_version) == (version_a, version_a)
    assert live_versions(project_a) == dict.fromkeys(TARGETS, version_a)
    assert_started_together(result)
    assert_deployed_together(result, ["aws", "azure"])

    finished = max(first(result.journal, t, ("smoke test passed", "failed")) for t in TARGETS)
    assert first(result.journal, "aws", ("rollback",)) >= finished  # the policy came after
    for target in ("aws", "azure"):  # took B, passed its smoke test, then went back to A
        journal = steps(result, target)
        assert ("smoke test passed", "2 rows") in journal
        rollback = journal.index(("rollback", f"to {version_a}"))
        assert journal.index(("rolled back", version_a)) > rollback
    journal = steps(result, "gcp")
    assert [s for s, _ in journal if s in ("rollback", "remove", "smoke test")] == []
    assert any(s == "failed" and VERTEX_REASON in d for s, d in journal)
    assert_predictions(project_a)  # A answers through every cloud's invoke path


def test_keep_leaves_the_others_on_b_when_sagemaker_rolls_itself_back(
    multicloud: MultiCloud, model_b: str
) -> None:
    project_a, version_a = push_version_a(multicloud)
    script = Script(states=["Updating", "RollingBack"], outcome="rollback", reason=AWS_REASON)
    multicloud.clouds.aws.script_update(script)

    result = push(multicloud.project(model_b), on_failure="keep")
    version_b = result.version
    assert version_b != version_a
    assert result.status == "degraded" and not result.ok
    # SageMaker put A back itself: "rolled back" by the cloud, not by the policy
    assert outcomes(result) == {"aws": "rolled back", "gcp": "updated", "azure": "updated"}
    assert AWS_REASON in error_of(result, "aws")
    assert ("rolled back by the cloud", version_a) in steps(result, "aws")
    lives = {t.target: t.live_version for t in result.targets}
    assert lives == {"aws": version_a, "gcp": version_b, "azure": version_b}
    assert live_versions(project_a) == lives
    assert_started_together(result)
    assert_deployed_together(result, ["gcp", "azure"])
    assert not any(e.step in ("rollback", "remove", "rolled back") for e in result.journal)
    assert_predictions(project_a)
