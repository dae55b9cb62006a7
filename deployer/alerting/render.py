"""One entry point over the renderers: ``render(rules, fmt, scope)`` -> ``Rendered``.

``scope`` names what the alerts watch on the platform (SageMaker ``EndpointName`` and
``VariantName``, a Vertex ``project``/``location``/``endpoint_id``, an Azure endpoint's
resource id, a Prometheus ``job``): from the provider's ``alerts()`` capability when it
has one, else placeholders the renderer names in a note.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class Rendered:
    """A rendered document (``document``: what ``text`` serialises), the rules a platform
    cannot express (``skipped``: name, why) and notes."""

    fmt: str
    document: Any
    text: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.fmt,
            "document": self.document,
            "text": self.text,
            "skipped": [{"rule": n, "reason": r} for n, r in self.skipped],
            "notes": list(self.notes),
        }


Renderer = Callable[[list[AlertRule], Mapping[str, str]], Rendered]


def renderers() -> dict[str, Renderer]:
    from deployer.alerting import azure, cloudwatch, gcp, prometheus

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


def as_json(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def placeholders(
    scope: Mapping[str, str], names: tuple[str, ...]
) -> tuple[dict[str, str], list[str]]:
    """``scope`` completed with ``<NAME>`` placeholders for the missing ``names``, and a note
    naming them."""
    full = dict(scope)
    missing = [n for n in names if not full.get(n)]
    for n in missing:
        full[n] = f"<{n}>"
    notes = [f"replace the placeholders {', '.join(f'<{n}>' for n in missing)}"] if missing else []
    return full, notes
