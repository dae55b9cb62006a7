"""DNS-level failover or weighting with Route 53: a change batch for
``route53.change_resource_record_sets`` plus the health checks its records use.

Pure rendering: nothing is sent to AWS. The output is one JSON document::

    {"HostedZoneId": ..., "HealthChecks": [{"Name", "CallerReference", "HealthCheckConfig"}],
     "ChangeBatch": {"Comment": ..., "Changes": [...]}}

Create each health check (``create_health_check``) and replace the placeholder
``{{health_check_id:BACKEND}}`` in the change batch with its id before sending it.

Mapping: several tiers → failover records, tier 0 ``PRIMARY`` and tier 1 ``SECONDARY``
(Route 53 has two; a tier with several backends becomes an alias to weighted records
under ``tierN.DNS_NAME``); one tier → weighted records (``weighted``) or latency records by
the backends' regions (``least-latency``). Only backends DNS can point at are rendered:
no signing, no fixed invoke URL, no path prefix.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

from deployer.errors import UsageError
from deployer.router.manifest import BackendConfig, Manifest
from deployer_router.render import Rendered


def _reachable(manifest: Manifest) -> tuple[list[BackendConfig], list[tuple[str, str]]]:
    keep, skipped = [], []
    for backend in manifest.backends:
        parts = urlsplit(backend.url)
        if backend.auth.kind != "none" or backend.mode != "base":
            skipped.append((backend.name, "needs request signing or a fixed invoke URL"))
        elif parts.path not in ("", "/"):
            skipped.append((backend.name, f"a path prefix ({parts.path}) DNS cannot carry"))
        elif backend.weight == 0:
            skipped.append((backend.name, "weight 0 (drained)"))
        else:
            keep.append(backend)
    if not keep:
        raise UsageError("no backend DNS can point at (see the skipped list)")
    return keep, skipped


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def render(
    manifest: Manifest,
    *,
    dns_name: str | None = None,
    hosted_zone_id: str = "HOSTED_ZONE_ID",
    ttl: int = 60,
    **_: Any,
) -> Rendered:
    if not dns_name:
        raise UsageError("route53 needs the record name: --dns-name api.example.com")
    name = dns_name.rstrip(".") + "."
    backends, skipped = _reachable(manifest)
    notes: list[str] = []
    hosts = {b.name: urlsplit(b.url) for b in backends}
    kinds = {"A" if _is_ip(p.hostname or "") else "CNAME" for p in hosts.values()}
    if len(kinds) > 1:
        raise UsageError("route53: backends mix IP addresses and host names; use one kind")
    record_type = kinds.pop()
    ports = {p.port or (443 if p.scheme == "https" else 80) for p in hosts.values()}
    if len(ports) > 1:
        notes.append(f"backends listen on different ports {sorted(ports)}; DNS carries no port")
    active = manifest.health.active
    checks = []
    for backend in backends:
        parts = hosts[backend.name]
        config: dict[str, Any] = {
            "Type": "HTTPS" if parts.scheme == "https" else "HTTP",
            "Port": parts.port or (443 if parts.scheme == "https" else 80),
            "ResourcePath": backend.health_path,
            "RequestInterval": 10 if active.interval <= 10 else 30,
            "FailureThreshold": min(max(active.unhealthy_threshold, 1), 10),
        }
        host = parts.hostname or ""
        config["IPAddress" if record_type == "A" else "FullyQualifiedDomainName"] = host
        checks.append(
            {
                "Name": backend.name,
                "CallerReference": f"{manifest.name}-{backend.name}",
                "HealthCheckConfig": config,
            }
        )

    def record(backend: BackendConfig, record_name: str, **routing: Any) -> dict[str, Any]:
        return {
            "Name": record_name,
            "Type": record_type,
            "SetIdentifier": backend.name,
            "TTL": ttl,
            "ResourceRecords": [{"Value": hosts[backend.name].hostname}],
            "HealthCheckId": f"{{{{health_check_id:{backend.name}}}}}",
            **routing,
        }

    changes: list[dict[str, Any]] = []
    tiers = sorted({b.tier for b in backends})
    if len(tiers) > 1:
        if len(tiers) > 2:
            notes.append("Route 53 failover has two levels: tiers 2 and lower are left out")
            dropped = [b for b in backends if b.tier not in tiers[:2]]
            skipped += [(b.name, "a third tier (Route 53 failover has two)") for b in dropped]
        for role, tier in zip(("PRIMARY", "SECONDARY"), tiers[:2], strict=False):
            members = [b for b in backends if b.tier == tier]
            if len(members) == 1:
                changes.append(record(members[0], name, Failover=role))
                continue
            group = f"tier{tier}.{name}"
            changes += [record(b, group, Weight=b.weight) for b in members]
            changes.append(
                {
                    "Name": name,
                    "Type": record_type,
                    "SetIdentifier": f"tier{tier}",
                    "Failover": role,
                    "AliasTarget": {
                        "HostedZoneId": hosted_zone_id,
                        "DNSName": group,
                        "EvaluateTargetHealth": True,
                    },
                }
            )
    elif manifest.policy == "least-latency":
        missing = [b.name for b in backends if not b.region]
        if missing:
            raise UsageError(f"route53 latency records need a region on {', '.join(missing)}")
        changes = [record(b, name, Region=b.region) for b in backends]
    else:
        changes = [record(b, name, Weight=b.weight) for b in backends]
    document = {
        "HostedZoneId": hosted_zone_id,
        "HealthChecks": checks,
        "ChangeBatch": {
            "Comment": f"deployer router {manifest.name}",
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": c} for c in changes],
        },
    }
    return Rendered(
        "route53", json.dumps(document, indent=2) + "\n", "route53.json", skipped, notes
    )
