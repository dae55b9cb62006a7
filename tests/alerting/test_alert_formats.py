"""Each rendered format checked against the vendor's own definition: promtool for the
Prometheus rules, botocore's cloudwatch model for PutMetricAlarm, the monitoring_v3
AlertPolicy message for Cloud Monitoring, azure-mgmt-monitor's MetricAlertResource."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from alerting_support import check_rules, rules

from deployer.alerting.render import render

SCOPE_AWS = {"EndpointName": "iris-prod", "VariantName": "AllTraffic"}
SCOPE_GCP = {"endpoint_id": "1234567890", "location": "europe-west4"}
SCOPE_AZURE = {
    "endpoint_id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/"
    "providers/Microsoft.MachineLearningServices/workspaces/ws/onlineEndpoints/iris-prod"
}


def test_prometheus_rules_pass_promtool_with_every_rule(tmp_path: Path) -> None:
    rendered = render(rules(error_rate=0.1, p99_ms=250), "prometheus", {"job": "iris"})
    path = tmp_path / "rules.yml"
    path.write_text(rendered.text)
    assert "SUCCESS: 5 rules found" in check_rules(path)
    entries = {r["alert"]: r for r in yaml.safe_load(rendered.text)["groups"][0]["rules"]}
    assert entries["DeployerHighErrorRate"]["expr"].endswith("> 0.1")
    assert 'status=~"5.."' in entries["DeployerHighErrorRate"]["expr"]
    assert entries["DeployerHighLatencyP99"]["expr"].endswith("> 0.25")  # ms -> seconds
    assert 'job="iris"' in entries["DeployerModelNotReady"]["expr"]
    assert entries["DeployerFeatureDrift"]["expr"].endswith("> 0.2")  # monitoring.drift.psi
    assert rendered.skipped == []


def test_prometheusrule_is_a_manifest_whose_groups_pass_promtool(tmp_path: Path) -> None:
    rendered = render(rules(drift_psi=0.3), "prometheusrule", {"namespace": "ml"})
    manifest = yaml.safe_load(rendered.text)
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["namespace"] == "ml"
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": manifest["spec"]["groups"]}))
    assert "SUCCESS: 5 rules found" in check_rules(path)
    assert "> 0.3" in manifest["spec"]["groups"][0]["rules"][3]["expr"]


def test_cloudwatch_alarms_are_valid_put_metric_alarm_requests() -> None:
    from botocore.session import get_session
    from botocore.validate import ParamValidator

    operation = get_session().get_service_model("cloudwatch").operation_model("PutMetricAlarm")
    shape = operation.input_shape
    rendered = render(rules(p99_ms=300, window_minutes=2), "cloudwatch", SCOPE_AWS)
    alarms = json.loads(rendered.text)["alarms"]
    assert len(alarms) == 2
    for body in alarms:
        report = ParamValidator().validate(body, shape)
        assert not report.has_errors(), report.generate_report()
        assert body["ComparisonOperator"] in shape.members["ComparisonOperator"].enum
    errors, latency = alarms
    assert [m["Id"] for m in errors["Metrics"]] == ["errors", "invocations", "error_rate"]
    assert errors["Metrics"][0]["MetricStat"]["Metric"]["MetricName"] == "Invocation5XXErrors"
    assert errors["Metrics"][0]["MetricStat"]["Period"] == 120
    assert {"Name": "EndpointName", "Value": "iris-prod"} in latency["Dimensions"]
    assert latency["MetricName"] == "ModelLatency"
    assert latency["Threshold"] == 300_000  # ModelLatency is in microseconds
    assert latency["ExtendedStatistic"] == "p99"
    skipped = dict(rendered.skipped)
    assert set(skipped) == {
        "DeployerModelNotReady",
        "DeployerFeatureDrift",
        "DeployerPredictionDrift",
    }
    assert "Model Monitor" in skipped["DeployerFeatureDrift"]


def test_cloudwatch_without_a_target_names_its_placeholders() -> None:
    rendered = render(rules(), "cloudwatch")
    assert rendered.notes == ["replace the placeholders <EndpointName>, <VariantName>"]
    assert "<EndpointName>-DeployerHighErrorRate" in rendered.text


def test_gcp_policies_parse_as_monitoring_v3_alert_policies() -> None:
    from google.cloud import monitoring_v3

    rendered = render(rules(error_rate=0.02, p99_ms=400), "gcp", SCOPE_GCP)
    policies = json.loads(rendered.text)["policies"]
    parsed = [monitoring_v3.AlertPolicy.from_json(json.dumps(p)) for p in policies]
    critical, warning = parsed
    assert critical.severity == monitoring_v3.AlertPolicy.Severity.CRITICAL
    ratio = critical.conditions[0].condition_threshold
    assert "prediction/online/response_count" in ratio.filter
    assert 'full_match("5.*")' in ratio.filter
    assert 'endpoint_id = "1234567890"' in ratio.denominator_filter
    assert ratio.threshold_value == pytest.approx(0.02)
    latency = warning.conditions[0].condition_threshold
    assert "prediction/online/prediction_latencies" in latency.filter
    assert latency.aggregations[0].per_series_aligner.name == "ALIGN_PERCENTILE_99"
    assert latency.threshold_value == 400  # the distribution is in milliseconds
    assert {n for n, _ in rendered.skipped} == {
        "DeployerModelNotReady",
        "DeployerFeatureDrift",
        "DeployerPredictionDrift",
    }


def test_azure_metric_alert_is_a_valid_metric_alert_resource() -> None:
    from azure.mgmt.monitor.models import (
        MetricAlertResource,
        MetricAlertSingleResourceMultipleMetricCriteria,
    )

    rendered = render(rules(p99_ms=800, window_minutes=10), "azure", SCOPE_AZURE)
    template = json.loads(rendered.text)
    assert template["$schema"].endswith("deploymentTemplate.json#")
    (resource,) = template["resources"]
    assert resource["type"] == "Microsoft.Insights/metricAlerts"
    model = MetricAlertResource.deserialize(resource)
    required = [k for k, v in MetricAlertResource._validation.items() if v.get("required")]
    assert [k for k in required if getattr(model, k) is None] == []
    # nothing the model does not know is lost (ARM's type/apiVersion/name aside)
    arm = {"type", "apiVersion", "name"}
    assert model.serialize() == {k: v for k, v in resource.items() if k not in arm}
    assert isinstance(model.criteria, MetricAlertSingleResourceMultipleMetricCriteria)
    (criterion,) = model.criteria.all_of
    assert criterion.metric_name == "RequestLatency_P99"
    assert criterion.threshold == 800
    assert model.window_size.total_seconds() == 15 * 60  # 10 min is no Azure window
    assert model.scopes == [SCOPE_AZURE["endpoint_id"]]
    assert any("15-minute window" in n for n in rendered.notes)
    assert "ratio" in dict(rendered.skipped)["DeployerHighErrorRate"]


def test_an_unknown_format_names_the_choices() -> None:
    from deployer.errors import UsageError

    with pytest.raises(UsageError, match="unknown alert format 'nagios'") as caught:
        render(rules(), "nagios")
    assert "cloudwatch" in str(caught.value)
