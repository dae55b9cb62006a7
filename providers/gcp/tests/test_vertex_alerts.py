"""The vertex provider's alerts: the pushed endpoint's id and location in the rendered
Cloud Monitoring policies (a placeholder before the first push); a push with
``monitoring.alerts.apply`` creates the policy through the real client against the fake
AlertPolicyService (which refuses what Cloud Monitoring refuses), then updates it."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from vertex_support import provider, push, release

from deployer.alerting.apply import after_push
from deployer.alerting.render import render
from deployer.alerting.rules import alert_rules
from deployer.alerting.targets import format_and_scope
from deployer.config import MonitoringConfig
from deployer.journal import Journal
from deployer.results import TargetResult


def policies(target: Any) -> tuple[list[dict[str, Any]], list[str]]:
    fmt, scope = format_and_scope(target, "vertex")
    assert fmt == "gcp"
    rendered = render(alert_rules(MonitoringConfig()), fmt, scope)
    return json.loads(rendered.text)["policies"], rendered.notes


def test_the_policies_watch_the_pushed_endpoint(vertex: Any, adc: Any) -> None:
    target = provider(vertex.address)
    _, notes = policies(target)
    assert notes == ["replace the placeholders <endpoint_id>"]
    assert push(target, release(1))[1].healthy
    (endpoint,) = vertex.endpoints.values()
    endpoint_id = str(endpoint.name).rsplit("/", 1)[-1]
    after, notes = policies(target)
    assert notes == []
    threshold = after[0]["conditions"][0]["conditionThreshold"]
    assert f'resource.labels.endpoint_id = "{endpoint_id}"' in threshold["filter"]
    assert f'resource.labels.location = "{target.options.region}"' in threshold["filter"]
    assert after[0]["displayName"].startswith(target.scope.display())


APPLY = MonitoringConfig.model_validate({"alerts": {"apply": True}})


def applied(target: Any) -> Journal:
    """The push's alerts hook run for ``target``, as the orchestrator runs it."""
    hook = after_push(APPLY)
    assert hook is not None
    journal = Journal()
    hook({"gcp": target}, [TargetResult("gcp", "vertex", "updated")], journal)
    return journal


def test_push_with_apply_creates_the_policy_then_updates_it(vertex: Any, adc: Any) -> None:
    target = provider(vertex.address, monitoring_endpoint=vertex.address)
    assert push(target, release(1))[1].healthy
    ((entry),) = applied(target).entries
    assert entry.step == "alerts applied", entry.detail
    assert entry.detail.startswith(f"{target.scope.display()} (critical)")
    assert "skipped DeployerModelNotReady" in entry.detail
    created = vertex.alert_policies.policies  # one policy per severity
    assert sorted(p.display_name.rsplit(" ", 1)[1] for p in created.values()) == [
        "(critical)",
        "(warning)",
    ]
    endpoint_id = str(next(iter(vertex.endpoints.values())).name).rsplit("/", 1)[-1]
    for policy in created.values():
        threshold = policy.conditions[0].condition_threshold
        assert f'resource.labels.endpoint_id = "{endpoint_id}"' in threshold.filter
        assert policy.user_labels["managed-by"] == "deployer"
    names = sorted(created)

    ((again),) = applied(target).entries  # the next push: the same policies, updated
    assert again.step == "alerts applied"
    assert sorted(vertex.alert_policies.policies) == names
    assert [m for m, _, _ in vertex.calls if "AlertPolic" in m] == [
        "ListAlertPolicies", "CreateAlertPolicy", "CreateAlertPolicy",
        "ListAlertPolicies", "UpdateAlertPolicy", "UpdateAlertPolicy",
    ]  # fmt: skip


def test_a_policy_the_service_refuses_is_journalled(vertex: Any, adc: Any) -> None:
    target = provider(vertex.address, monitoring_endpoint=vertex.address)
    assert push(target, release(1))[1].healthy
    vertex.fail(
        "CreateAlertPolicy", grpc.StatusCode.PERMISSION_DENIED, "no monitoring.alertPolicies.create"
    )
    ((entry),) = applied(target).entries
    assert entry.step == "alerts not applied"
    assert "monitoring.alertPolicies.create" in entry.detail
    assert vertex.alert_policies.policies == {}


def test_the_fake_refuses_what_cloud_monitoring_refuses() -> None:
    from alert_policies_fake import check_policy
    from google.cloud import monitoring_v3
    from monitoring_fake import MonitoringError

    rendered = render(alert_rules(MonitoringConfig()), "gcp", {"endpoint_id": "1", "location": "l"})
    good = json.loads(rendered.text)["policies"][0]
    check_policy(monitoring_v3.AlertPolicy.from_json(json.dumps(good)))
    broken = {
        "user_labels": {**good, "userLabels": {"Managed": "x"}},
        "comparison": _with_threshold(good, comparison="COMPARISON_EQ"),
        "duration": _with_threshold(good, duration="90s"),
        "metric": _with_threshold(good, filter='resource.type = "x" AND metric.type = "y"'),
        "conditions": {**good, "conditions": []},
    }
    for what, body in broken.items():
        with pytest.raises(MonitoringError):
            check_policy(monitoring_v3.AlertPolicy.from_json(json.dumps(body)))
            pytest.fail(f"{what}: accepted")


def _with_threshold(policy: dict[str, Any], **changes: Any) -> dict[str, Any]:
    condition = dict(policy["conditions"][0])
    condition["conditionThreshold"] = {**condition["conditionThreshold"], **changes}
    return {**policy, "conditions": [condition]}
