"""A fake of Cloud Monitoring's AlertPolicyService (Create, List, Update, Delete) served at
the wire (gRPC, on the fake Vertex server) to the official ``google-cloud-monitoring``
client.

Strict: each request is parsed into the client's own request message and the policy is
checked as the API reference (``google.monitoring.v3.AlertPolicy``) says Cloud Monitoring
checks it: ``name`` is ``projects/ID``; a created policy carries no ``name`` (the service
assigns it) and an updated one names a policy that exists; ``display_name`` at most 512
characters; ``user_labels`` at most 64, keys and values lowercase letters, digits, ``_``
and ``-`` (keys starting with a letter), at most 63 characters; one to six conditions, each
with a display name and one condition type, a ``combiner`` when there are several; a
threshold condition's ``filter`` names one known metric and the resource type (the
denominator's the metric), each at most 2048 characters; ``comparison`` GT or LT; a
``duration`` in whole minutes; aggregations valid for the metric (monitoring_fake's
aligner rules), the denominator's with the same alignment period. Label values may be
``monitoring.regex.full_match("...")`` (the regex must compile).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable
from typing import Any

import grpc
from google.cloud import monitoring_v3
from google.protobuf import empty_pb2
from monitoring_fake import (
    _GROUP,
    MIN_ALIGNMENT_SECONDS,
    VALID_ALIGNERS,
    Aligner,
    MonitoringError,
    Query,
    Reducer,
    _check_label,
    parse_filter,
)

_PROJECT = re.compile(r"^projects/[a-z0-9][a-z0-9-]*$")
_POLICY = re.compile(r"^projects/[a-z0-9][a-z0-9-]*/alertPolicies/[0-9]+$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_REGEX = re.compile(r'=\s*monitoring\.regex\.full_match\("((?:[^"\\]|\\.)*)"\)')
_LIST_FILTER = re.compile(r'^user_labels\.?"?([a-z][a-z0-9_-]*)"?\s*=\s*"([^"]*)"$')
MAX_CONDITIONS = 6
Comparison = monitoring_v3.ComparisonType


def _invalid(message: str) -> MonitoringError:
    return MonitoringError(grpc.StatusCode.INVALID_ARGUMENT, message)


class FakeAlertPolicies:
    """The stored policies by name, and the service's handlers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._ids = itertools.count(1001)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.policies: dict[str, Any] = {}

    def create(self, request: Any) -> Any:
        _project(request.name)
        policy = request.alert_policy
        if policy.name:
            raise _invalid("alert_policy.name must not be set when creating a policy.")
        check_policy(policy)
        created = monitoring_v3.AlertPolicy(policy)
        created.name = f"{request.name}/alertPolicies/{next(self._ids)}"
        with self.lock:
            self.policies[created.name] = created
        return created

    def update(self, request: Any) -> Any:
        policy = request.alert_policy
        if not _POLICY.match(policy.name):
            raise _invalid(f"Invalid alert policy name {policy.name!r}.")
        if request.update_mask.paths:
            raise MonitoringError(grpc.StatusCode.UNIMPLEMENTED, "update masks: not in this fake")
        check_policy(policy)
        with self.lock:
            if policy.name not in self.policies:
                raise MonitoringError(
                    grpc.StatusCode.NOT_FOUND, f"Alert policy {policy.name} does not exist."
                )
            self.policies[policy.name] = monitoring_v3.AlertPolicy(policy)
        return policy

    def list(self, request: Any) -> Any:
        _project(request.name)
        wanted = _list_filter(request.filter)
        with self.lock:
            found = [
                p
                for name, p in sorted(self.policies.items())
                if name.startswith(request.name + "/")
                and all(p.user_labels.get(k) == v for k, v in wanted.items())
            ]
        return monitoring_v3.ListAlertPoliciesResponse(alert_policies=found, total_size=len(found))

    def delete(self, request: Any) -> Any:
        with self.lock:
            if self.policies.pop(request.name, None) is None:
                raise MonitoringError(
                    grpc.StatusCode.NOT_FOUND, f"Alert policy {request.name} does not exist."
                )
        return empty_pb2.Empty()

    def handlers(
        self, wrap: Callable[[str, Callable[[Any], Any]], Callable[[Any, Any], Any]]
    ) -> grpc.GenericRpcHandler:
        policy = monitoring_v3.AlertPolicy
        table: dict[str, tuple[Callable[[Any], Any], Any, Callable[[Any], bytes]]] = {
            "CreateAlertPolicy": (self.create, monitoring_v3.CreateAlertPolicyRequest,
                                  policy.serialize),
            "UpdateAlertPolicy": (self.update, monitoring_v3.UpdateAlertPolicyRequest,
                                  policy.serialize),
            "ListAlertPolicies": (self.list, monitoring_v3.ListAlertPoliciesRequest,
                                  monitoring_v3.ListAlertPoliciesResponse.serialize),
            "DeleteAlertPolicy": (self.delete, monitoring_v3.DeleteAlertPolicyRequest,
                                  empty_pb2.Empty.SerializeToString),
        }  # fmt: skip
        methods = {
            name: grpc.unary_unary_rpc_method_handler(
                wrap(name, function),
                request_deserializer=request_type.deserialize,
                response_serializer=serialize,
            )
            for name, (function, request_type, serialize) in table.items()
        }
        return grpc.method_handlers_generic_handler(
            "google.monitoring.v3.AlertPolicyService", methods
        )


def _project(name: str) -> None:
    if not _PROJECT.match(name):
        raise _invalid(f"Invalid resource name {name!r}: expected projects/PROJECT_ID.")


def _list_filter(text: str) -> dict[str, str]:
    """``user_labels."key" = "value"`` clauses joined by AND (what the provider sends)."""
    wanted: dict[str, str] = {}
    for clause in re.split(r"\s+AND\s+", text.strip()) if text.strip() else []:
        match = _LIST_FILTER.match(clause.strip())
        if not match:
            raise MonitoringError(
                grpc.StatusCode.UNIMPLEMENTED, f"filter {text!r}: not served by this fake"
            )
        wanted[match.group(1)] = match.group(2)
    return wanted


def check_policy(policy: Any) -> None:
    """The errors Cloud Monitoring gives for an AlertPolicy (see the module docstring)."""
    if len(policy.display_name) > 512:
        raise _invalid("display_name must be at most 512 characters.")
    if len(policy.user_labels) > 64:
        raise _invalid("user_labels can contain up to 64 entries.")
    for key, value in policy.user_labels.items():
        if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            raise _invalid(
                f"user_labels {key!r}: {value!r}: keys and values may contain only lowercase "
                "letters, numerals, underscores and dashes (keys start with a letter), "
                "at most 63 characters."
            )
    conditions = list(policy.conditions)
    if not 1 <= len(conditions) <= MAX_CONDITIONS:
        raise _invalid(f"A policy can have from one to six conditions; got {len(conditions)}.")
    combiner = monitoring_v3.AlertPolicy.ConditionCombinerType
    if len(conditions) > 1 and policy.combiner == combiner.COMBINE_UNSPECIFIED:
        raise _invalid("combiner is required when a policy has more than one condition.")
    for index, condition in enumerate(conditions):
        where = f"conditions[{index}]"
        if not condition.display_name:
            raise _invalid(f"{where}.display_name is required.")
        kind = monitoring_v3.AlertPolicy.Condition.pb(condition).WhichOneof("condition")
        if kind is None:
            raise _invalid(f"{where}: one condition type is required.")
        if kind != "condition_threshold":
            raise MonitoringError(
                grpc.StatusCode.UNIMPLEMENTED, f"{where}.{kind}: not in this fake"
            )
        _threshold(condition.condition_threshold, f"{where}.condition_threshold")


def _threshold(threshold: Any, where: str) -> None:
    if not threshold.filter:
        raise _invalid(f"{where}.filter is required.")
    query = _filter(threshold.filter, f"{where}.filter", needs_resource=True)
    periods = _aggregations(threshold.aggregations, query, f"{where}.aggregations")
    if threshold.denominator_filter:
        denominator = _filter(threshold.denominator_filter, f"{where}.denominator_filter", False)
        others = _aggregations(
            threshold.denominator_aggregations, denominator, f"{where}.denominator_aggregations"
        )
        if others != periods:
            raise _invalid(
                f"{where}: aggregations and denominator_aggregations must use the same "
                "alignment period."
            )
    if threshold.comparison not in (Comparison.COMPARISON_GT, Comparison.COMPARISON_LT):
        raise _invalid(f"{where}.comparison: only COMPARISON_LT and COMPARISON_GT are supported.")
    seconds = threshold.duration.total_seconds() if "duration" in threshold else 0
    if seconds % 60:
        raise _invalid(f"{where}.duration must be a multiple of a minute; got {seconds}s.")


def _filter(text: str, where: str, needs_resource: bool) -> Query:
    """The filter parsed as ListTimeSeries parses it, regex label values checked first."""
    if len(text) > 2048:
        raise _invalid(f"{where} must not exceed 2048 characters.")
    for pattern in _REGEX.findall(text):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _invalid(f"{where}: invalid regular expression {pattern!r}: {exc}") from None
    if needs_resource and "resource.type" not in text:
        raise _invalid(f"{where} must specify the metric type and the resource type.")
    return parse_filter(_REGEX.sub('= "matched"', text))


def _aggregations(aggregations: Any, query: Query, where: str) -> list[float]:
    """Each aggregation checked for the metric; their alignment periods."""
    periods = []
    for aggregation in aggregations:
        aligner, reducer = aggregation.per_series_aligner, aggregation.cross_series_reducer
        if aligner not in VALID_ALIGNERS[query.descriptor.value_type]:
            raise _invalid(
                f"{where}: the aligner {Aligner(aligner).name} cannot be applied to metrics "
                f"with kind DELTA and value type {query.descriptor.value_type}."
            )
        period = (
            aggregation.alignment_period.total_seconds() if "alignment_period" in aggregation else 0
        )
        if aligner != Aligner.ALIGN_NONE and period < MIN_ALIGNMENT_SECONDS:
            raise _invalid(
                f"{where}: the alignment period must be at least {MIN_ALIGNMENT_SECONDS}s "
                f"when an aligner is given; got {period}s."
            )
        if reducer != Reducer.REDUCE_NONE and aligner == Aligner.ALIGN_NONE:
            raise _invalid(f"{where}: a cross-series reducer requires a per-series aligner.")
        for field in aggregation.group_by_fields:
            match = _GROUP.match(field)
            if not match:
                raise _invalid(f"{where}: invalid group_by_fields entry {field!r}.")
            _check_label(match.group(1), match.group(2), query.descriptor)
        periods.append(period)
    return periods
