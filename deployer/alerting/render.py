"""One entry point over the renderers: ``render(rules, fmt, scope)`` -> ``Rendered``.

``scope`` names what the alerts watch on the platform (SageMaker ``EndpointName`` and
``VariantName``, a Vertex ``project``/``location``/``endpoint_id``, an Azure endpoint's
resource id, a Prometheus ``job``): from the provider's ``alerts()`` capability when it
has one, else placeholders the renderer names in a note.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from deployer.alerting import azure, cloudwatch, gcp, prometheus
from deployer.alerting.document import Rendered
from deployer.alerting.rules import AlertRule
from deployer.errors import UsageError

FORMATS = ("prometheus", "prometheusrule", "cloudwatch", "gcp", "azure")
# the format a target's provider reads, when --format is not given
DEFAULT_FORMATS = {
    "sagemaker": "cloudwatch",
    "vertex": "gcp",
    "azureml": "azure",
    "kubernetes": "prometheusrule",
    "local": "prometheus",
}


Renderer = Callable[[list[AlertRule], Mapping[str, str]], Rendered]


def renderers() -> dict[str, Renderer]:
    return {
        "prometheus": prometheus.render_rules_file,
        "prometheusrule": prometheus.render_prometheus_rule,
        "cloudwatch": cloudwatch.render,
        "gcp": gcp.render,
        "azure": azure.render,
    }


def render(rules: list[AlertRule], fmt: str, scope: Mapping[str, str] | None = None) -> Rendered:
    """``rules`` in format ``fmt``; a UsageError names an unknown format."""
    table = renderers()
    if fmt not in table:
        raise UsageError(
            f"--format: unknown alert format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}"
        )
    return table[fmt](rules, scope or {})
