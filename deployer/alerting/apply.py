"""``monitoring.alerts.apply: true``: after a push, each target that took the release and
whose provider has the ``alerts()`` capability gets the rendered alerts applied. The outcome
is a journal entry per target (``alerts applied`` with the names, ``alerts not applied`` with
why); a failure never fails the push."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deployer.alerting.render import render
from deployer.alerting.rules import alert_rules
from deployer.alerting.targets import target_alerts
from deployer.config import MonitoringConfig
from deployer.errors import DeployerError

# (providers, the targets' results, the journal) -> None
AfterPush = Callable[[Mapping[str, Any], list[Any], Any], None]


def after_push(monitoring: MonitoringConfig) -> AfterPush | None:
    """The push's hook when ``monitoring.alerts.apply`` is on, else None."""
    if not monitoring.alerts.apply:
        return None

    def apply(providers: Mapping[str, Any], targets: list[Any], journal: Any) -> None:
        rules = alert_rules(monitoring)
        for result in targets:
            if not result.ok:
                continue
            found = target_alerts(providers[result.target])
            applier = getattr(found, "apply", None)
            if found is None or applier is None:
                hint = f"the provider cannot: deployer alerts render --to {result.target}"
                journal.record(result.target, "alerts not applied", hint)
                continue
            try:
                rendered = render(rules, found.format, found.scope)
                names = applier(rendered.document)
            except DeployerError as exc:
                journal.record(result.target, "alerts not applied", exc.message)
                continue
            skipped = f"; skipped {', '.join(n for n, _ in rendered.skipped)}" * bool(
                rendered.skipped
            )
            journal.record(result.target, "alerts applied", ", ".join(names) + skipped)

    return apply
