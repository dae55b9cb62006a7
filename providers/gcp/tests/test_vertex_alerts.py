"""The vertex provider's alerts: the pushed endpoint's id and location in the rendered
Cloud Monitoring policies (a placeholder before the first push)."""

from __future__ import annotations

import json
from typing import Any

from vertex_support import provider, push, release

from deployer.alerting.render import render
from deployer.alerting.rules import alert_rules
from deployer.alerting.targets import format_and_scope
from deployer.config import MonitoringConfig


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
