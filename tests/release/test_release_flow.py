"""push, rollback and destroy through the CLI against the ``fakecloud`` provider: the
audit records each appends, the annotations a push puts on the release, ``history``,
and the release gates stopping a push before anything changes (or overridden, on
record)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from release_support import MODEL_SHA, Cloud, FakeCloud, cli, fake_project, release_of

from deployer.audit import AuditLog, AuditTrail

METRICS = {"f1_macro": 0.95, "roc_auc": 0.90, "log_loss": 0.30}


def records(project: Path) -> list[dict[str, Any]]:
    return AuditLog(project.parent).records()


def deploys() -> int:
    return sum(cloud.calls.count("deploy") for cloud in FakeCloud.clouds.values())


def push(project: Path, *args: str) -> Any:
    return cli("push", "--to", "a,b", "-f", str(project), *args)


def test_push_appends_started_then_outcome_and_annotates_the_release(
    tmp_path: Path, fakecloud: Any
) -> None:
    project = fake_project(tmp_path, metrics=METRICS)
    run = push(project, "--reason", "first release")
    assert run.exit_code == 0, run.stderr
    started, finished = records(project)
    assert started["outcome"] == "started"
    assert started["targets"]["a"]["outcome"] == "pending"
    assert finished["outcome"] == "succeeded"
    assert started["release"] == finished["release"]
    release = fakecloud.release
    assert finished["version"] == release.version
    assert finished["image"] == {"ref": release.image.ref, "digest": release.image.id}
    assert finished["targets"]["a"] == {
        "outcome": "updated",
        "version": release.version,
        "previous_version": None,
        "live_version": release.version,
        "error": None,
    }
    assert finished["who"]["name"] == "octocat"
    assert finished["who"]["source"] == "github-actions"
    assert finished["why"]["reason"] == "first release"
    assert finished["model_sha256"] == MODEL_SHA
    assert finished["metrics"] == METRICS
    assert finished["strategy"] == "all-at-once"
    annotations = FakeCloud.clouds["a"].versions[-1][1]
    assert annotations == {
        "deployer-model-sha256": MODEL_SHA[:32],
        "deployer-pushed-by": "octocat",
        "deployer-release": finished["release"],
    }
    assert AuditLog(tmp_path).verify().count == 2


def test_a_failed_push_records_each_targets_outcome(tmp_path: Path, fakecloud: Any) -> None:
    project = fake_project(tmp_path)
    FakeCloud.clouds["b"] = Cloud(fail_deploy=True)
    run = push(project)
    assert run.exit_code == 1
    finished = records(project)[-1]
    assert finished["outcome"] == "rolled back"
    assert finished["targets"]["b"]["outcome"] != "updated"
    assert "it broke on purpose" in finished["targets"]["b"]["error"]
    assert finished["targets"]["a"]["outcome"] == "removed"


def test_rollback_and_destroy_are_recorded_and_history_shows_it(
    tmp_path: Path, fakecloud: Any
) -> None:
    project = fake_project(tmp_path, metrics=METRICS)
    v1 = fakecloud.release.version
    assert push(project).exit_code == 0
    fakecloud.release = release_of("v2")
    v2 = fakecloud.release.version
    assert push(project, "--reason", "v2").exit_code == 0
    back = cli("rollback", "--to", "a", "-f", str(project), "--reason", "v2 is slow")
    assert back.exit_code == 0, back.stderr
    gone = cli("destroy", "--to", "b", "-y", "-f", str(project), "--reason", "cost")
    assert gone.exit_code == 0, gone.stderr

    rollback = [r for r in records(project) if r["action"] == "rollback"]
    assert [r["outcome"] for r in rollback] == ["started", "succeeded"]
    assert rollback[-1]["targets"]["a"] == {
        "outcome": "rolled back",
        "version": v1,
        "previous_version": v2,
    }
    assert rollback[-1]["why"]["reason"] == "v2 is slow"
    destroy = [r for r in records(project) if r["action"] == "destroy"]
    assert [r["outcome"] for r in destroy] == ["started", "succeeded"]
    assert destroy[-1]["targets"]["b"]["outcome"] == "destroyed"
    assert AuditLog(tmp_path).verify().ok

    shown = cli("history", "-f", str(project), "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    targets = {t["target"]: t for t in json.loads(shown.stdout)["targets"]}
    a = targets["a"]
    assert [(e["action"], e["version"], e["outcome"]) for e in a["entries"]] == [
        ("push", v1, "updated"),
        ("push", v2, "updated"),
        ("rollback", v1, "rolled back"),
    ]
    assert [e["live"] for e in a["entries"]] == [False, False, True]
    assert a["live_version"] == v1
    assert a["annotations"]["deployer-pushed-by"] == "octocat"
    assert a["entries"][1]["why"]["reason"] == "v2"
    assert a["entries"][0]["metrics"] == METRICS
    assert targets["b"]["state"] == "absent"
    assert targets["b"]["entries"][-1]["action"] == "destroy"
    text = cli("history", "--to", "a", "-f", str(project))
    assert text.exit_code == 0
    assert "v2 is slow" in text.stdout and "octocat" in text.stdout


def test_a_push_cut_off_after_deploying_stays_on_record(
    tmp_path: Path, fakecloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the process dies between the deploy and the outcome's record: the started record
    # names the release, history says interrupted, and the gates find its metrics
    project = fake_project(tmp_path, gates=["roc_auc >= live"], metrics=METRICS)
    with monkeypatch.context() as patch:
        patch.setattr(AuditTrail, "finish", lambda self, result: None)
        assert push(project).exit_code == 0
    history = json.loads(cli("history", "--to", "a", "-f", str(project), "-o", "json").stdout)
    [entry] = history["targets"][0]["entries"]
    assert entry["outcome"] == "interrupted" and entry["live"] is True
    gates = json.loads(cli("plan", "--to", "a", "-f", str(project), "-o", "json").stdout)["gates"]
    assert gates[0]["passed"] and gates[0]["threshold"] == METRICS["roc_auc"]


# -- gates -----------------------------------------------------------------------------

GATES = ["f1_macro >= 0.9", "roc_auc >= live - 0.01"]


def test_a_failing_gate_stops_the_push_before_anything_changes(
    tmp_path: Path, fakecloud: Any
) -> None:
    project = fake_project(tmp_path, gates=GATES, metrics=METRICS)
    first = push(project)
    assert first.exit_code == 0, first.stderr
    assert "no live version on a" in first.stderr  # the first push passes with a note
    deployed, built = deploys(), fakecloud.builds

    fake_project(tmp_path, gates=GATES, metrics={**METRICS, "roc_auc": 0.85})
    fakecloud.release = release_of("v2")
    run = push(project)
    assert run.exit_code == 1
    assert "a: roc_auc >= live - 0.01 (value 0.85, threshold 0.89)" in run.stderr
    assert "b: roc_auc >= live - 0.01" in run.stderr
    assert "nothing was built or changed" in run.stderr
    assert (deploys(), fakecloud.builds) == (deployed, built)
    blocked = records(project)[-1]
    assert blocked["outcome"] == "blocked"
    assert [g["passed"] for g in blocked["gates"]] == [True, False, False]

    as_json = push(project, "-o", "json")
    assert as_json.exit_code == 1
    document = json.loads(as_json.stdout)
    assert document["status"] == "blocked" and document["ok"] is False
    failed = [g for g in document["gates"] if not g["passed"]]
    assert {g["target"] for g in failed} == {"a", "b"}
    assert failed[0]["value"] == 0.85 and failed[0]["threshold"] == pytest.approx(0.89)


def test_override_needs_a_reason_and_is_recorded(tmp_path: Path, fakecloud: Any) -> None:
    project = fake_project(tmp_path, gates=["f1_macro >= 0.99"], metrics=METRICS)
    no_reason = push(project, "--override-gates")
    assert no_reason.exit_code == 2
    assert "--reason" in no_reason.stderr
    assert deploys() == 0 and records(project) == []

    run = push(project, "--override-gates", "--reason", "hotfix for incident 12")
    assert run.exit_code == 0, run.stderr
    assert "overridden (hotfix for incident 12)" in run.stderr
    assert FakeCloud.clouds["a"].live == fakecloud.release.version
    finished = records(project)[-1]
    assert finished["outcome"] == "succeeded"
    assert finished["override"] == {"reason": "hotfix for incident 12"}
    assert finished["gates"][0]["passed"] is False
    assert finished["gates"][0]["value"] == METRICS["f1_macro"]


def test_previous_compares_with_the_version_before_the_live_one(
    tmp_path: Path, fakecloud: Any
) -> None:
    project = fake_project(tmp_path, gates=["log_loss <= previous"], metrics={"log_loss": 0.3})
    assert push(project, "--to", "a").exit_code == 0  # no previous: passes
    fake_project(tmp_path, gates=["log_loss <= previous"], metrics={"log_loss": 0.2})
    fakecloud.release = release_of("v2")
    assert push(project).exit_code == 0  # live v1, previous none: passes
    for value, passed in ((0.25, True), (0.35, False)):  # live v2 (0.2), previous v1 (0.3)
        fake_project(tmp_path, gates=["log_loss <= previous"], metrics={"log_loss": value})
        run = cli("plan", "--to", "a,b", "-f", str(project), "-o", "json")
        assert run.exit_code == (0 if passed else 1), run.stderr
        a, b = json.loads(run.stdout)["gates"]
        assert (a["target"], a["passed"], a["threshold"]) == ("a", passed, 0.3)
        assert b["passed"] and "no previous version on b" in b["note"]


def test_a_stale_or_missing_evaluation_fails_the_gate_saying_run_evaluate(
    tmp_path: Path, fakecloud: Any
) -> None:
    project = fake_project(
        tmp_path, gates=["f1_macro >= 0.5"], metrics=METRICS, evaluated_sha="0" * 64
    )
    run = push(project)
    assert run.exit_code == 1
    assert "stale" in run.stderr and "deployer evaluate" in run.stderr
    assert deploys() == 0
    fake_project(tmp_path, gates=["f1_macro >= 0.5"], metrics=None)
    again = push(project, "--dry-run")
    assert again.exit_code == 1
    assert "records no evaluation" in again.stderr


def test_plan_and_dry_run_check_the_gates_and_change_nothing(
    tmp_path: Path, fakecloud: Any
) -> None:
    project = fake_project(tmp_path, gates=["f1_macro >= 0.99"], metrics=METRICS)
    plan = cli("plan", "--to", "a,b", "-f", str(project))
    assert plan.exit_code == 1
    assert "f1_macro >= 0.99 (value 0.95, threshold 0.99)" in plan.stderr
    assert all("plan" not in c.calls for c in FakeCloud.clouds.values())
    dry = push(project, "--dry-run")
    assert dry.exit_code == 1
    assert fakecloud.builds == 0 and deploys() == 0
    assert records(project) == []  # a dry run changes nothing, so nothing is recorded
    fake_project(tmp_path, gates=["f1_macro >= 0.9"], metrics=METRICS)
    passing = cli("plan", "--to", "a,b", "-f", str(project), "-o", "json")
    assert passing.exit_code == 0, passing.stderr
    assert json.loads(passing.stdout)["gates"][0]["passed"] is True


def test_rollback_reads_no_model_file(tmp_path: Path, fakecloud: Any) -> None:
    # an emergency rollback works whatever the model file has become
    project = fake_project(tmp_path)
    assert push(project).exit_code == 0
    fakecloud.release = release_of("v2")
    assert push(project).exit_code == 0
    (tmp_path / "model.joblib").unlink()
    back = cli("rollback", "--to", "a,b", "-f", str(project))
    assert back.exit_code == 0, back.stderr
    finished = records(project)[-1]
    assert (finished["action"], finished["outcome"]) == ("rollback", "succeeded")
    assert finished["model_sha256"] is None and finished["metrics"] == {}


def test_a_tampered_log_fails_the_live_gates(tmp_path: Path, fakecloud: Any) -> None:
    # lowering the live version's recorded metric would let a worse model through
    project = fake_project(tmp_path, gates=["roc_auc >= live"], metrics=METRICS)
    assert push(project).exit_code == 0
    log = AuditLog(tmp_path)
    log.path.write_text(log.path.read_text().replace('"roc_auc":0.9', '"roc_auc":0.1'))
    fake_project(tmp_path, gates=["roc_auc >= live"], metrics={**METRICS, "roc_auc": 0.5})
    fakecloud.release = release_of("v2")
    run = push(project)
    assert run.exit_code == 1
    assert "does not verify (line 1" in run.stderr
    assert deploys() == 2  # only the first push's


def test_a_rollback_that_fails_halfway_is_recorded_as_partial(
    tmp_path: Path, fakecloud: Any
) -> None:
    project = fake_project(tmp_path)
    assert push(project).exit_code == 0
    fakecloud.release = release_of("v2")
    assert push(project).exit_code == 0
    FakeCloud.clouds["b"].fail_rollback = True
    back = cli("rollback", "--to", "a,b", "-f", str(project))
    assert back.exit_code == 1
    assert "the rollback was refused" in back.stderr
    finished = records(project)[-1]
    assert (finished["action"], finished["outcome"]) == ("rollback", "partial")
    assert finished["targets"]["a"]["outcome"] == "rolled back"
    assert finished["targets"]["b"]["outcome"] == "failed"
    assert "refused" in finished["targets"]["b"]["error"]


def test_a_failed_destroy_is_recorded(tmp_path: Path, fakecloud: Any) -> None:
    project = fake_project(tmp_path)
    assert push(project).exit_code == 0
    FakeCloud.clouds["a"].fail_destroy = True
    gone = cli("destroy", "--to", "a", "-y", "-f", str(project), "--reason", "cost")
    assert gone.exit_code == 1
    started, failed = records(project)[-2:]
    assert (started["action"], started["outcome"]) == ("destroy", "started")
    assert (failed["action"], failed["outcome"]) == ("destroy", "failed")
    assert "the endpoint is locked" in failed["error"]
    assert failed["why"]["reason"] == "cost"


def test_history_without_live_asks_no_target(tmp_path: Path, fakecloud: Any) -> None:
    project = fake_project(tmp_path)
    assert push(project, "--to", "a").exit_code == 0
    calls = list(FakeCloud.clouds["a"].calls)
    shown = cli("history", "--no-live", "-f", str(project), "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    [a, b] = json.loads(shown.stdout)["targets"]
    assert (a["target"], a["state"], len(a["entries"])) == ("a", None, 1)
    assert (b["target"], b["entries"]) == ("b", [])
    assert FakeCloud.clouds["a"].calls == calls
    assert cli("history", "-f", str(project)).exit_code == 0
    assert FakeCloud.clouds["a"].calls == [*calls, "status"]  # the live view asks it
