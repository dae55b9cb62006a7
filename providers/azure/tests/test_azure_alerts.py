"""The azureml provider's alerts: the online endpoint's ARM id in the rendered metric
alert; ``monitoring.alerts.apply`` reports that it cannot apply them."""

from __future__ import annotations

import json
from typing import Any

from deployer.alerting.apply import after_push
from deployer.alerting.render import render
from deployer.alerting.rules import alert_rules
from deployer.alerting.targets import format_and_scope
from deployer.config import MonitoringConfig
from deployer.journal import Journal
from deployer.results import TargetResult


def test_the_metric_alert_watches_this_online_endpoint(make_provider: Any) -> None:
    provider = make_provider(target="azure", project="iris")
    fmt, scope = format_and_scope(provider, "azureml")
    assert fmt == "azure"
    assert scope["endpoint_id"].endswith(
        "/providers/Microsoft.MachineLearningServices/workspaces/"
        f"{provider.options.workspace}/onlineEndpoints/{provider.workspace.endpoint}"
    )
    rendered = render(alert_rules(MonitoringConfig()), fmt, scope)
    (resource,) = json.loads(rendered.text)["resources"]
    assert resource["properties"]["scopes"] == [scope["endpoint_id"]]
    assert resource["name"] == f"{provider.workspace.endpoint}-DeployerHighLatencyP99"
    assert rendered.notes == []  # no placeholder left


def test_apply_is_journalled_as_not_possible_and_changes_nothing(make_provider: Any) -> None:
    hook = after_push(MonitoringConfig.model_validate({"alerts": {"apply": True}}))
    assert hook is not None
    journal = Journal()
    hook({"azure": make_provider()}, [TargetResult("azure", "azureml", "updated")], journal)
    ((entry),) = journal.entries
    assert (entry.step, entry.detail) == (
        "alerts not applied",
        "the provider cannot: deployer alerts render --to azure",
    )
