"""KEDA ScaledObjects (keda.sh/v1alpha1) with prometheus triggers to rule documents.

Each prometheus trigger becomes an ``External`` metric exactly as KEDA hands it to the HPA it
creates: metric name ``s<index>-prometheus`` (unless the trigger is named), target
``AverageValue``/``Value`` = ``threshold`` per the trigger's ``metricType``, plus KEDA's
``activationThreshold`` and ``ignoreNullValues`` (an empty result counts as 0). ``cpu``/``memory``
triggers become the ``Resource`` (or, with ``containerName``, ``ContainerResource``) metric KEDA
gives its HPA. Triggers of any other type read their source directly, not through PromQL, and are
reported per trigger.

A ScaledObject KEDA would refuse (its admission webhook, or a trigger whose metadata its scaler
cannot parse, which leaves the object not Ready and its HPA unmanaged) is refused whole with
KEDA's reason, even when the offending field is one ampscaler would drop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ampscaler.importers.common import (
    ItemResult,
    as_list,
    as_mapping,
    copy_behavior,
    integer_field,
    item_ref,
    new_rule_document,
    target_document,
    unique_metric_name,
)
from ampscaler.quantity import parse_quantity, quantity_decimal

SCALED_OBJECT_KIND = "ScaledObject"
KEDA_API_VERSION = "keda.sh/v1alpha1"
PAUSED_ANNOTATION = "autoscaling.keda.sh/paused"
PAUSED_REPLICAS_ANNOTATION = "autoscaling.keda.sh/paused-replicas"

# ScaledObject defaults (keda.sh/docs reference/scaledobject-spec).
DEFAULT_MIN_REPLICA_COUNT = 0
DEFAULT_MAX_REPLICA_COUNT = 100
DEFAULT_POLLING_INTERVAL = 30
DEFAULT_COOLDOWN_PERIOD = 300

_AMP_URL = re.compile(
    r"^https://aps-workspaces\.([a-z0-9-]+)\.amazonaws\.com/workspaces/(ws-[A-Za-z0-9-]+)/?"
)
_IN_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local", ".local")
# Trigger metadata ampscaler has no counterpart for: what each did, for the note.
_DROPPED_METADATA = {
    "namespace": "sent as the namespace= query parameter (Thanos/Cortex tenancy)",
    "customHeaders": "sent as extra HTTP headers",
    "queryParameters": "sent as extra query parameters",
    "cortexOrgID": "sent as the X-Scope-OrgID header",
    "unsafeSsl": "disabled TLS verification",
    "timeout": "set the HTTP client timeout",
    "authModes": "chose KEDA's authentication mode",
    "identityOwner": "chose whose AWS identity signs requests",
}
# KEDA's strconv.ParseBool spellings.
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class _NotConvertible(Exception):
    """One trigger cannot become a rule metric; the message is the reason."""


class _Rejected(Exception):
    """KEDA itself would refuse the object; the message is KEDA's reason."""


# Metadata keys of the prometheus scaler by parsed type (scalers/prometheus_scaler.go,
# prometheusMetadata), checked as typed_config parses them.
_PROMETHEUS_REQUIRED = ("serverAddress", "query", "threshold")
_PROMETHEUS_FLOATS = ("threshold", "activationThreshold")
_PROMETHEUS_BOOLS = ("ignoreNullValues", "unsafeSsl")
_PROMETHEUS_MAPS = ("customHeaders", "queryParameters")
_RESOURCE_TRIGGERS = ("cpu", "memory")


def keda_rejections(spec: Mapping[str, Any]) -> list[str]:
    """Why KEDA would refuse this ScaledObject spec: its webhook's checks and its scalers' parsing.

    Upstream: apis/keda/v1alpha1 ``CheckReplicaCountBoundsAreValid``, ``CheckFallbackValid``
    (the cpu/memory part, present in every release with fallback), the webhook's "only cpu/memory
    triggers AND minReplica is 0" check, ``cpu_memory_scaler.go`` ``parseResourceMetadata`` and
    ``prometheus_scaler.go`` ``parsePrometheusMetadata`` through ``typed_config.go``. Only
    prometheus, cpu and memory triggers are parsed here; other types are reported per trigger.

    Returns
    -------
    list[str]
        KEDA's messages, each prefixed with the trigger it concerns; empty when KEDA accepts it.
    """
    reasons: list[str] = []
    min_count = _spec_int(spec, "minReplicaCount", DEFAULT_MIN_REPLICA_COUNT)
    max_count = _spec_int(spec, "maxReplicaCount", DEFAULT_MAX_REPLICA_COUNT)
    idle = _spec_int(spec, "idleReplicaCount", None)
    if min_count is not None and max_count is not None and min_count > max_count:
        reasons.append(f"MinReplicaCount={min_count} must be less than MaxReplicaCount={max_count}")
    if idle is not None and min_count is not None and idle >= min_count:
        reasons.append(f"IdleReplicaCount={idle} must be less than MinReplicaCount={min_count}")
    triggers = [as_mapping(t) for t in as_list(spec.get("triggers"))]
    fallback = spec.get("fallback")
    if isinstance(fallback, dict):
        threshold = _spec_int(fallback, "failureThreshold", 0)
        replicas = _spec_int(fallback, "replicas", 0)
        if (threshold or 0) < 0 or (replicas or 0) < 0:
            reasons.append(
                f"FailureThreshold={threshold} & Replicas={replicas} must both be greater than or equal to 0"
            )
        for trigger in triggers:
            if trigger.get("type") in _RESOURCE_TRIGGERS:
                reasons.append(
                    f"type is {trigger.get('type')}, but fallback it is not supported by the CPU & memory scalers"
                )
                break
    if triggers and all(t.get("type") in _RESOURCE_TRIGGERS for t in triggers) and min_count == 0:
        reasons.append(
            "scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in this case)"
        )
    for index, trigger in enumerate(triggers):
        kind = str(trigger.get("type", ""))
        where = f"triggers[{index}] ({kind})"
        if kind == "prometheus":
            reasons.extend(
                f"{where}: error parsing prometheus metadata: {r}" for r in _prometheus_errors(trigger)
            )
        elif kind in _RESOURCE_TRIGGERS:
            reasons.extend(
                f"{where}: error parsing {kind} metadata: {r}" for r in _resource_trigger_errors(trigger)
            )
    return reasons


def _spec_int(spec: Mapping[str, Any], key: str, default: int | None) -> int | None:
    """An integer field (or its default); None when absent without default or not an integer,
    which ``integer_field`` reports during conversion."""
    raw = spec.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not float(raw).is_integer():
        return None
    return int(raw)


def _go_float(raw: str) -> float | None:
    """Go's strconv.ParseFloat(raw, 64) for decimal text; None where Go reports an error.

    Python's float() also takes "1_000", surrounding spaces and "infinity" spelled other ways;
    Go takes underscores only after a base prefix, so those are refused here as KEDA would.
    """
    if raw != raw.strip() or "_" in raw or not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def _prometheus_errors(trigger: Mapping[str, Any]) -> list[str]:
    """typed_config's errors for the prometheus scaler's metadata (every one, as KEDA reports them)."""
    metadata = {str(k): v for k, v in as_mapping(trigger.get("metadata")).items()}
    errors: list[str] = []
    for key in _PROMETHEUS_REQUIRED:
        if str(metadata.get(key) or "") == "":
            errors.append(f'missing required parameter "{key}" in [triggerMetadata]')
    for key in _PROMETHEUS_FLOATS:
        raw = metadata.get(key)
        if raw is not None and str(raw) != "" and _go_float(str(raw)) is None:
            errors.append(
                f'unable to set param "{key}" value "{raw}": strconv.ParseFloat: parsing "{raw}": invalid syntax'
            )
    for key in _PROMETHEUS_BOOLS:
        raw = metadata.get(key)
        if raw is not None and str(raw) != "" and str(raw) not in _TRUE | _FALSE:
            errors.append(
                f'unable to set param "{key}" value "{raw}": strconv.ParseBool: parsing "{raw}": invalid syntax'
            )
    for key in _PROMETHEUS_MAPS:
        raw = metadata.get(key)
        if raw is None or str(raw) == "":
            continue
        for pair in str(raw).split(","):
            if "=" not in pair:
                errors.append(
                    f'unable to set param "{key}" value "{raw}": invalid map value "{pair}", expected key=value'
                )
                break
    metric_type = str(trigger.get("metricType") or "")
    if metric_type == "Utilization":
        errors.append(
            "'Utilization' metric type is unsupported for external metrics, allowed values are 'Value' or 'AverageValue'"
        )
    elif metric_type not in ("", "AverageValue", "Value"):
        errors.append(f"unknown metric type: {metric_type}")
    return errors


def _resource_trigger_errors(trigger: Mapping[str, Any]) -> list[str]:
    """parseResourceMetadata's errors for a cpu/memory trigger."""
    metadata = as_mapping(trigger.get("metadata"))
    legacy = str(metadata.get("type") or "")
    metric_type = str(trigger.get("metricType") or "")
    if legacy and metric_type:
        return ["only one of trigger.metadata.type or trigger.metricType should be defined"]
    chosen = legacy or metric_type
    if not chosen:
        return ["no type given in neither trigger.metadata.type or trigger.metricType"]
    value = str(metadata.get("value") or "")
    if not value:
        return ["no value given"]
    if chosen == "AverageValue":
        try:
            quantity_decimal(value)
        except ValueError:
            return [
                f"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' ({value!r})"
            ]
        return []
    if chosen == "Utilization":
        if re.fullmatch(r"[+-]?\d+", value) is None or not -(2**31) <= int(value) < 2**31:
            return [f'strconv.ParseInt: parsing "{value}": invalid syntax']
        return []
    return ["unsupported metric type, allowed values are 'Utilization' or 'AverageValue'"]


def convert_scaled_object(manifest: Mapping[str, Any], cluster: str | None) -> ItemResult:
    """Convert one KEDA ScaledObject into a rule document.

    ``pollingInterval`` is not copied into ``evaluationIntervalSeconds``: KEDA polls triggers
    at that interval only to decide activation (0 <-> 1); scaling between 1 and N is done by the
    HPA KEDA creates, which reads the metric at every controller sync (15 s) — ampscaler's
    per-tick evaluation is that sync. Only when every prometheus trigger sets
    ``useCachedMetrics`` (the HPA then sees a value refreshed once per pollingInterval) does
    the rule get ``evaluationIntervalSeconds: pollingInterval``.

    Parameters
    ----------
    manifest
        The ScaledObject as read from YAML.
    cluster
        ``target.cluster`` for the rule; None leaves it to the stack default.

    Returns
    -------
    ItemResult
        The document (None when no trigger converted or the object as a whole cannot be) and a
        problem per trigger left out.
    """
    result = ItemResult(item_ref(manifest))
    if manifest.get("apiVersion") != KEDA_API_VERSION:
        result.skip(f"apiVersion {manifest.get('apiVersion')!r} is not {KEDA_API_VERSION} (KEDA v2)")
        return result
    meta = as_mapping(manifest.get("metadata"))
    spec = as_mapping(manifest.get("spec"))
    advanced = as_mapping(spec.get("advanced"))
    rejected = keda_rejections(spec)
    if rejected:
        for reason in rejected:
            result.skip(f"KEDA would reject this ScaledObject: {reason}")
        return result
    if advanced.get("scalingModifiers"):
        # The formula replaces every trigger's metric with one composite metric: converting the
        # triggers alone would scale on something else.
        result.skip(
            "advanced.scalingModifiers combines triggers with a formula; ampscaler takes the maximum "
            "over metrics like the HPA, so write the formula into one PromQL query instead",
            "spec.advanced.scalingModifiers",
        )
        return result
    ref = as_mapping(spec.get("scaleTargetRef"))
    if not ref.get("name"):
        result.skip("spec.scaleTargetRef.name is required", "spec.scaleTargetRef")
        return result

    min_replicas = integer_field(
        spec, "minReplicaCount", DEFAULT_MIN_REPLICA_COUNT, result, "spec.minReplicaCount"
    )
    max_replicas = integer_field(
        spec, "maxReplicaCount", DEFAULT_MAX_REPLICA_COUNT, result, "spec.maxReplicaCount"
    )
    cooldown = integer_field(spec, "cooldownPeriod", DEFAULT_COOLDOWN_PERIOD, result, "spec.cooldownPeriod")
    polling = integer_field(spec, "pollingInterval", DEFAULT_POLLING_INTERVAL, result, "spec.pollingInterval")
    if min_replicas is None or max_replicas is None or cooldown is None or polling is None:
        return result
    if spec.get("idleReplicaCount") is not None and min_replicas > 0:
        result.note(
            f"idleReplicaCount {spec['idleReplicaCount']} with minReplicaCount {min_replicas}: the rule uses "
            f"minReplicas 0, so when active it scales from 0 to what the metrics ask (at least 1), not "
            f"straight to {min_replicas}"
        )
        min_replicas = 0
    doc = new_rule_document(
        target_document(
            cluster,
            result.ref.namespace,
            str(ref.get("kind") or "Deployment"),
            str(ref["name"]),
            str(ref.get("apiVersion") or "apps/v1"),
        ),
        min_replicas,
        max_replicas,
    )

    sources: list[tuple[dict[str, Any] | None, str]] = []
    cached: list[bool] = []
    value_targets = False
    taken: set[str] = set()
    for index, raw in enumerate(as_list(spec.get("triggers"))):
        trigger = as_mapping(raw)
        where = f"spec.triggers[{index}]"
        try:
            metric, source, address = _convert_trigger(index, trigger, result)
            if source is _NO_SOURCE:
                metric["name"] = unique_metric_name(str(metric["name"]), taken)
                doc["metrics"].append(metric)
                continue
            if sources and source != sources[0][0]:
                raise _NotConvertible(
                    f"serverAddress {address} differs from the first trigger's {sources[0][1]}; "
                    "a rule queries one Prometheus"
                )
        except _NotConvertible as exc:
            result.skip(str(exc), where)
            continue
        sources.append((source, address))
        cached.append(trigger.get("useCachedMetrics") is True)
        value_targets = value_targets or metric["target"]["type"] == "Value"
        metric["name"] = unique_metric_name(str(metric["name"]), taken)
        doc["metrics"].append(metric)

    behavior = copy_behavior(as_mapping(advanced.get("horizontalPodAutoscalerConfig")).get("behavior"))
    if behavior is not None:
        doc["behavior"] = behavior
    fallback = as_mapping(spec.get("fallback"))
    if fallback:
        doc["fallback"] = {
            k: fallback[k] for k in ("failureThreshold", "replicas", "behavior") if k in fallback
        }
        if value_targets:
            result.note(
                "fallback: KEDA ignores it for Value triggers; ampscaler applies it to the whole rule"
            )
    _paused(meta, doc, result)
    if min_replicas == 0:
        # Like KEDA's cooldownPeriod, it only governs the last step to zero replicas.
        doc["cooldownPeriodSeconds"] = cooldown
    if cached and all(cached):
        doc["evaluationIntervalSeconds"] = polling
    elif "pollingInterval" in spec:
        result.note(
            f"pollingInterval {polling}s: KEDA uses it for activation checks; the HPA it drives reads the "
            "metric every sync (15 s), which ampscaler's per-tick evaluation mirrors, so the rule has no "
            "evaluationIntervalSeconds"
        )
    if spec.get("initialCooldownPeriod"):
        result.note("initialCooldownPeriod has no ampscaler counterpart and was dropped")
    if advanced.get("restoreToOriginalReplicaCount"):
        result.note(
            "advanced.restoreToOriginalReplicaCount applies when the ScaledObject is deleted; "
            "deleting an ampscaler rule leaves the replica count as it is"
        )
    if sources and sources[0][0] is not None:
        doc["prometheus"] = sources[0][0]
    if doc["metrics"]:
        result.document = doc
    elif not result.problems:
        result.skip("no triggers to convert", "spec.triggers")
    return result


# A cpu/memory trigger reads no Prometheus: it takes no part in the one-server check.
_NO_SOURCE: dict[str, Any] = {"none": True}


def _resource_trigger(kind: str, trigger: Mapping[str, Any]) -> dict[str, Any]:
    """A cpu/memory trigger as the metric KEDA puts in its HPA (cpu_memory_scaler.go GetMetricSpecForScaling).

    ``keda_rejections`` has already checked the metadata, so the values parse.
    """
    metadata = as_mapping(trigger.get("metadata"))
    target_type = str(metadata.get("type") or trigger.get("metricType"))
    value = str(metadata["value"])
    target: dict[str, Any] = (
        {"type": "Utilization", "averageUtilization": int(value)}
        if target_type == "Utilization"
        else {"type": "AverageValue", "averageValue": parse_quantity(value)}
    )
    container = str(metadata.get("containerName") or "")
    if container:
        return {
            "name": f"{kind}-{container}",
            "type": "ContainerResource",
            "containerResource": {"name": kind, "container": container, "target": target},
        }
    return {"name": kind, "type": "Resource", "resource": {"name": kind, "target": target}}


def _paused(meta: Mapping[str, Any], doc: dict[str, Any], result: ItemResult) -> None:
    annotations = as_mapping(meta.get("annotations"))
    replicas = annotations.get(PAUSED_REPLICAS_ANNOTATION)
    if replicas is not None:
        doc["paused"] = True
        result.note(
            f"{PAUSED_REPLICAS_ANNOTATION}={replicas}: KEDA holds the target at {replicas} replicas; an "
            "ampscaler paused rule evaluates and logs but leaves the count where it is — scale it to "
            f"{replicas} yourself"
        )
    elif str(annotations.get(PAUSED_ANNOTATION, "")).strip() in _TRUE:
        doc["paused"] = True


def _convert_trigger(
    index: int, trigger: Mapping[str, Any], result: ItemResult
) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    """One prometheus trigger as a rule metric, its Prometheus source and raw serverAddress."""
    kind = str(trigger.get("type", ""))
    if kind in _RESOURCE_TRIGGERS:
        return _resource_trigger(kind, trigger), _NO_SOURCE, ""
    if kind != "prometheus":
        raise _NotConvertible(
            f"{kind or '(no type)'} trigger reads its source directly, not through Prometheus; export the "
            "value to Prometheus (AMP) and use a prometheus trigger/metric"
        )
    metric_type = str(trigger.get("metricType") or "AverageValue")
    if metric_type not in ("AverageValue", "Value"):
        # KEDA allows Utilization only for its cpu/memory scalers.
        raise _NotConvertible(f"metricType {metric_type!r} is not AverageValue or Value")
    metadata = as_mapping(trigger.get("metadata"))
    missing = [k for k in ("serverAddress", "query", "threshold") if not metadata.get(k)]
    if missing:
        raise _NotConvertible(f"metadata is missing {', '.join(missing)}")
    threshold = _number(metadata["threshold"], "threshold")
    key = "value" if metric_type == "Value" else "averageValue"
    metric: dict[str, Any] = {
        "name": str(trigger.get("name") or f"s{index}-prometheus"),
        "type": "External",
        "query": str(metadata["query"]).strip(),
        "target": {"type": metric_type, key: threshold},
    }
    if metadata.get("activationThreshold") not in (None, ""):
        metric["activationThreshold"] = _number(metadata["activationThreshold"], "activationThreshold")
    ignore_null = str(metadata.get("ignoreNullValues", "true")).strip()
    if ignore_null not in _TRUE | _FALSE:
        raise _NotConvertible(f"ignoreNullValues {ignore_null!r} is not a boolean")
    if ignore_null in _TRUE:
        # KEDA's default: an empty result (or NaN/Inf) is reported as 0 instead of an error.
        metric["emptyAs"] = 0
    for name, effect in _DROPPED_METADATA.items():
        if metadata.get(name) not in (None, ""):
            result.note(
                f"triggers[{index}].metadata.{name} ({effect}) has no ampscaler counterpart and was dropped"
            )
    if trigger.get("authenticationRef"):
        result.note(
            f"triggers[{index}].authenticationRef dropped: ampscaler signs AMP queries with its function's "
            "IAM role"
        )
    address = str(metadata["serverAddress"]).strip()
    return metric, _source(address, metadata.get("awsRegion"), index, result), address


def _source(address: str, aws_region: object, index: int, result: ItemResult) -> dict[str, Any] | None:
    """The rule's ``prometheus`` block for a serverAddress; None means the stack's AMP workspace."""
    amp = _AMP_URL.match(address)
    if amp:
        return {"workspaceId": amp.group(2), "region": str(aws_region or amp.group(1))}
    host = (urlsplit(address).hostname or "").lower()
    if (
        not host
        or "." not in host
        or host.endswith(_IN_CLUSTER_SUFFIXES)
        or host == "localhost"
        or host.startswith("127.")
    ):
        result.note(
            f"serverAddress {address} is in-cluster and unreachable from "
            "Lambda; the rule queries the stack's AMP workspace, so remote-write these series there"
        )
        return None
    return {"url": address.rstrip("/")}


def _number(raw: object, field: str) -> float | int:
    try:
        value = float(str(raw).strip())
    except ValueError as exc:
        raise _NotConvertible(f"metadata.{field} {raw!r} is not a number") from exc
    return int(value) if value.is_integer() else value
