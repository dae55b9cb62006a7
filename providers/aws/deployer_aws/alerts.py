"""The endpoint's alerts on CloudWatch: what ``deployer alerts render --to`` names (the
endpoint and its variant) and ``apply``: one PutMetricAlarm per rendered alarm (the
``cloudwatch`` format's ``{"alarms": [body, ...]}``), creating or updating each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployer.providers import UsageError
from deployer_aws import names
from deployer_aws.aws import Aws


class SageMakerAlerts:
    """The ``alerts()`` capability of the sagemaker provider."""

    format = "cloudwatch"

    def __init__(self, aws: Aws, endpoint: str) -> None:
        self.aws = aws
        self.endpoint = endpoint

    @property
    def scope(self) -> Mapping[str, str]:
        return {"EndpointName": self.endpoint, "VariantName": names.VARIANT}

    def apply(self, document: Any) -> list[str]:
        """PutMetricAlarm for each alarm of ``document``; the alarms' names."""
        alarms = document.get("alarms") if isinstance(document, dict) else None
        if not isinstance(alarms, list):
            raise UsageError("alerts: expected the cloudwatch format's {'alarms': [...]}")
        applied = []
        for body in alarms:
            name = str(body["AlarmName"])
            self.aws.call("cloudwatch", "put_metric_alarm", f"alarm {name}", **body)
            applied.append(name)
        return applied
