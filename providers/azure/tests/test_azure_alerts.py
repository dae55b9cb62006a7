"""The azureml provider's alerts: the online endpoint's ARM id in the rendered metric
alert; ``monitoring.alerts.apply`` PUTs it (Microsoft.Insights/metricAlerts) at the fake
ARM's wire, where the body is checked as the service checks it (azure_alerts_fake.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from azure_alerts_fake import ENDPOINTS, MetricAlertService
from azure_fake import FakeAzureML
from azure_support import image_ref, release

from deployer.alerting.apply import after_push
from deployer.alerting.render import render
from deployer.alerting.rules import alert_rules
from deployer.alerting.targets import format_and_scope
from deployer.config import MonitoringConfig
from deployer.errors import DeployerError, UsageError
from deployer.orchestrate import push_release
from deployer.providers import Strategy
from deployer_azure import client

EP = "iris-azure"
RULE = f"{EP}-DeployerHighLatencyP99"
SKIPPED = "skipped DeployerHighErrorRate, DeployerModelNotReady"


def apply_config(**alerts: Any) -> MonitoringConfig:
    return MonitoringConfig.model_validate({"alerts": {"apply": True, **alerts}})


def rendered(provider: Any, monitoring: MonitoringConfig | None = None) -> dict[str, Any]:
    fmt, scope = format_and_scope(provider, "azureml")
    assert fmt == "azure"
    return render(alert_rules(monitoring or MonitoringConfig()), fmt, scope).document


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


# -- push with monitoring.alerts.apply -------------------------------------------------------


def pushed(
    fake: FakeAzureML, make_provider: Any, tmp_path: Path, monitoring: MonitoringConfig, number: int
) -> Any:
    """A push of release ``number`` to the fake as the orchestrator runs it, with the hook."""
    target = make_provider()
    target.publish = lambda image, progress: image_ref(fake, number)
    return push_release(
        "iris",
        {"azure": target},
        lambda: release(number),
        strategy=Strategy(),
        policy="rollback",
        journal_dir=tmp_path / str(number),
        after_push=after_push(monitoring),
    )


def alert_steps(result: Any) -> list[tuple[str, str]]:
    return [(e.step, e.detail) for e in result.journal if e.step.startswith("alerts")]


def alert_puts(fake: FakeAzureML) -> list[Any]:
    return fake.requests_to("PUT", "/providers/Microsoft.Insights/metricAlerts/")


def test_push_with_apply_creates_the_metric_alert_on_the_endpoint(
    fake: FakeAzureML, make_provider: Any, tmp_path: Path
) -> None:
    result = pushed(fake, make_provider, tmp_path, apply_config(p99_ms=800), 1)
    assert result.ok, [t.error for t in result.targets]
    assert alert_steps(result) == [("alerts applied", f"{RULE}; {SKIPPED}, "
                                    "DeployerFeatureDrift, DeployerPredictionDrift")]  # fmt: skip
    assert "alerts applied" in next((tmp_path / "1").glob("*.json")).read_text()

    (put,) = alert_puts(fake)
    assert put.status == 200 and put.query["api-version"] == "2018-03-01"
    assert put.path == (
        f"/subscriptions/{fake.subscription}/resourceGroups/{fake.resource_group}"
        f"/providers/Microsoft.Insights/metricAlerts/{RULE}"
    )
    assert fake.alerts.refused == []
    rule = fake.alerts.get_rule(RULE)
    assert rule is not None
    properties = rule["properties"]
    assert properties["scopes"] == [fake._endpoint_id(EP)]  # the endpoint the push made
    assert properties["targetResourceType"] == ENDPOINTS
    (criterion,) = properties["criteria"]["allOf"]
    assert (criterion["metricName"], criterion["threshold"]) == ("RequestLatency_P99", 800)
    assert rule["tags"] == {
        "deployer-project": "iris",
        "deployer-target": "azure",
        "managed-by": "deployer",
    }
    # what ARM answers a GET of it, through the provider's own pipeline
    provider = make_provider()
    arm = client.arm_client(provider.options, provider.workspace.credential)
    got = client.arm_json(arm, "GET", provider.alerts().alert_id(RULE), "2018-03-01")
    assert got["id"].endswith(f"/metricAlerts/{RULE}") and got["properties"] == properties


def test_a_second_push_updates_the_metric_alert_and_adds_none(
    fake: FakeAzureML, make_provider: Any, tmp_path: Path
) -> None:
    first = pushed(fake, make_provider, tmp_path, apply_config(p99_ms=800), 1)
    second = pushed(fake, make_provider, tmp_path, apply_config(p99_ms=250), 2)
    assert first.ok and second.ok, [t.error for t in second.targets]
    assert alert_steps(first) == alert_steps(second)  # the same names
    assert [p.status for p in alert_puts(fake)] == [200, 200]
    assert list(fake.alerts.rules) == [RULE.lower()]
    rule = fake.alerts.get_rule(RULE)
    assert rule is not None
    assert rule["properties"]["criteria"]["allOf"][0]["threshold"] == 250


def test_a_refused_metric_alert_is_journalled_and_the_push_still_succeeds(
    fake: FakeAzureML, make_provider: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a 10-minute window, which Azure does not take, forced through the renderer
    monkeypatch.setattr("deployer.alerting.azure.WINDOWS", (10,))
    result = pushed(fake, make_provider, tmp_path, apply_config(window_minutes=10), 1)
    assert result.ok and result.status == "succeeded"
    ((step, detail),) = alert_steps(result)
    assert step == "alerts not applied"
    assert f"applying the metric alert {RULE} (400 BadRequest)" in detail
    assert "properties.windowSize: 'PT10M' is not one of PT1M" in detail  # the cloud's words
    assert [p.status for p in alert_puts(fake)] == [400]
    assert fake.alerts.rules == {}
    assert any("windowSize" in p for p in fake.alerts.refused)


def test_without_apply_the_push_puts_no_metric_alert(
    fake: FakeAzureML, make_provider: Any, tmp_path: Path
) -> None:
    result = pushed(fake, make_provider, tmp_path, MonitoringConfig(), 1)
    assert result.ok
    assert alert_steps(result) == []
    assert alert_puts(fake) == []


# -- apply itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        {"alarms": []},
        [],
        {"resources": {}},
        {"resources": [{"type": "Microsoft.Insights/actionGroups", "name": "x", "properties": {}}]},
        {"resources": [{"type": "Microsoft.Insights/metricAlerts", "properties": {}}]},
    ],
)
def test_apply_refuses_what_is_not_the_azure_template(
    fake: FakeAzureML, make_provider: Any, document: Any
) -> None:
    with pytest.raises(UsageError, match="expected the azure format's ARM template"):
        make_provider().alerts().apply(document)
    assert alert_puts(fake) == []


def test_a_forbidden_metric_alert_is_an_error_naming_it_and_the_role(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    fake.forbid("PUT", "/metricAlerts/", "Microsoft.Insights/metricAlerts/write")
    with pytest.raises(DeployerError, match=f"applying the metric alert {RULE}") as caught:
        provider.alerts().apply(rendered(provider))
    assert "Microsoft.Insights/metricAlerts/write" in caught.value.message
    assert "Monitoring Contributor" in (caught.value.hint or "")


def test_no_rule_left_applies_nothing(fake: FakeAzureML, make_provider: Any) -> None:
    template = {"$schema": "x", "contentVersion": "1.0.0.0", "resources": []}
    assert make_provider().alerts().apply(template) == []
    assert fake.requests == []


# -- the fake's checks (what Azure refuses) -------------------------------------------------

SCOPE = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices"
    "/workspaces/ws/onlineEndpoints/iris-azure"
)


def resource() -> dict[str, Any]:
    """The rendered rule as the PUT sends it (location, tags, properties)."""
    document = render(alert_rules(MonitoringConfig()), "azure", {"endpoint_id": SCOPE}).document
    (rule,) = document["resources"]
    return {k: rule[k] for k in ("location", "tags", "properties")}


def service() -> MetricAlertService:
    return MetricAlertService("s", "rg", lambda rid: ENDPOINTS if rid == SCOPE else None)


def test_the_fake_takes_the_rendered_rule() -> None:
    assert service().problems(RULE, resource()) == []


def _set(path: str, value: Any) -> Any:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is KeyError:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


CRITERION = "properties/criteria/allOf/0"


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    [
        (RULE, _set("properties/severity", 5), "severity: 5 is not an integer 0-4"),
        (RULE, _set("properties/enabled", KeyError), "properties.enabled is required"),
        (RULE, _set("properties/scopes", []), "is not a non-empty list of ids"),
        (RULE, _set("properties/scopes/0", SCOPE + "x"), "scopes[0]: the resource"),
        (RULE, _set("properties/windowSize", "PT10M"), "windowSize: 'PT10M' is not one of"),
        (RULE, _set("properties/evaluationFrequency", "PT6H"), "evaluationFrequency: 'PT6H'"),
        (RULE, _set("properties/evaluationFrequency", "PT15M"), "shorter than evaluation"),
        (RULE, _set("properties/criteria/odata.type", "Single"), "odata.type: 'Single'"),
        (RULE, _set("properties/criteria/allOf", []), "allOf: expected a non-empty list"),
        (RULE, _set(f"{CRITERION}/threshold", "high"), "threshold: 'high' is not a number"),
        (RULE, _set(f"{CRITERION}/threshold", KeyError), "threshold: None is not a number"),
        (RULE, _set(f"{CRITERION}/operator", "Above"), "operator: 'Above' is not one of"),
        (RULE, _set(f"{CRITERION}/timeAggregation", "P99"), "timeAggregation: 'P99'"),
        (RULE, _set(f"{CRITERION}/metricName", "Latency"), "has no metric 'Latency'"),
        (RULE, _set(f"{CRITERION}/name", KeyError), "allOf[0].name is required"),
        (RULE, _set(f"{CRITERION}/criterionType", "Fixed"), "criterionType: 'Fixed'"),
        (RULE, _set("properties/targetResourceType", "Microsoft.Web/sites"), "not the scope's"),
        (RULE, _set("location", KeyError), "location is required"),
        (RULE, _set("tags/a?b", "x"), "tags: the name 'a?b'"),
        (RULE, _set("tags/long", "v" * 257), "tags.long: the value is over 256"),
        ("a/b", None, "may not contain '/'"),
        ("rule.", None, "may not end with a space or a period"),
        ("x" * 261, None, "must be 1-260 characters"),
    ],
)
def test_the_fake_refuses_what_azure_refuses(name: str, change: Any, expected: str) -> None:
    body = copy.deepcopy(resource())
    if change is not None:
        change(body)
    problems = service().problems(name, body)
    assert any(expected in p for p in problems), problems


def test_the_fake_takes_a_full_day_window_either_way() -> None:
    body = resource()
    for window in ("PT24H", "P1D"):
        body["properties"]["windowSize"] = window
        assert service().problems(RULE, body) == []
