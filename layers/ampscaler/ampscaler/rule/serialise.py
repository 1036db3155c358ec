"""Writing a ``Rule`` back as a raw document with every default spelled out."""

from __future__ import annotations

from typing import Any

from ampscaler.model import (
    API_VERSION,
    MetricSpec,
    Rule,
    ScalingRules,
)


def _number(value: float) -> int | float:
    """Integral floats as ints so a written-back document reads like the one a person wrote."""
    return int(value) if float(value).is_integer() else value


def _rules_to_document(rules: ScalingRules) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rules.stabilization_window_seconds is not None:
        out["stabilizationWindowSeconds"] = rules.stabilization_window_seconds
    out["selectPolicy"] = rules.select_policy
    out["policies"] = [
        {"type": p.type, "value": p.value, "periodSeconds": p.period_seconds} for p in rules.policies
    ]
    if rules.tolerance is not None:
        out["tolerance"] = _number(rules.tolerance)
    return out


def _query_metric(spec: MetricSpec) -> dict[str, Any]:
    metric_target: dict[str, Any] = {"type": spec.target.type}
    if spec.target.type == "Value":
        metric_target["value"] = _number(spec.target.amount)
    else:
        metric_target["averageValue"] = _number(spec.target.amount)
    metric: dict[str, Any] = {
        "name": spec.name,
        "type": spec.type,
        "query": spec.query,
        "target": metric_target,
    }
    if spec.type == "Pods":
        metric["podLabel"] = spec.pod_label
    metric["activationThreshold"] = _number(spec.activation_threshold)
    if spec.empty_as is not None:
        metric["emptyAs"] = _number(spec.empty_as)
    return metric


def _resource_metric(spec: MetricSpec) -> dict[str, Any]:
    """A Resource/ContainerResource metric in the HPA's layout; the query only when it replaces the default."""
    target: dict[str, Any] = {"type": spec.target.type}
    if spec.target.type == "Utilization":
        target["averageUtilization"] = spec.target.average_utilization
    else:
        target["averageValue"] = _number(spec.target.amount)
    source: dict[str, Any] = {"name": spec.resource}
    if spec.container is not None:
        source["container"] = spec.container
    source["target"] = target
    metric: dict[str, Any] = {
        "name": spec.name,
        "type": spec.type,
        "resource" if spec.type == "Resource" else "containerResource": source,
    }
    if spec.query:
        metric["query"] = spec.query
    if spec.series is not None:
        series = spec.series
        fields = {
            "metric": series.cpu_metric if spec.resource == "cpu" else series.memory_metric,
            "namespaceLabel": series.namespace_label,
            "podLabel": series.pod_label,
            "containerLabel": series.container_label,
            "windowSeconds": series.window_seconds,
        }
        metric["series"] = {k: v for k, v in fields.items() if v is not None}
    return metric


def rule_to_document(rule: Rule) -> dict[str, Any]:
    """The rule as a raw document with every default written out; ``parse_rule`` of it gives ``rule`` back.

    Parameters
    ----------
    rule
        A parsed rule.

    Returns
    -------
    dict
        A JSON-serialisable document in the field order of ``docs/rules.md``.
    """
    target: dict[str, Any] = {
        "cluster": rule.target.cluster,
        "namespace": rule.target.namespace,
        "kind": rule.target.kind,
        "name": rule.target.name,
        "apiVersion": rule.target.api_version,
    }
    if not rule.target.cluster:
        del target["cluster"]
    metrics: list[dict[str, Any]] = []
    for spec in rule.metrics:
        metrics.append(_resource_metric(spec) if spec.resource is not None else _query_metric(spec))
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "name": rule.name,
        "target": target,
        "minReplicas": rule.min_replicas,
        "maxReplicas": rule.max_replicas,
        "metrics": metrics,
    }
    if rule.behavior is not None:
        doc["behavior"] = {
            "scaleUp": _rules_to_document(rule.behavior.scale_up),
            "scaleDown": _rules_to_document(rule.behavior.scale_down),
        }
    if rule.tolerance is not None:
        doc["tolerance"] = _number(rule.tolerance)
    if rule.fallback is not None:
        doc["fallback"] = {
            "failureThreshold": rule.fallback.failure_threshold,
            "replicas": rule.fallback.replicas,
            "behavior": rule.fallback.behavior,
        }
    doc["paused"] = rule.paused
    doc["dryRun"] = rule.dry_run
    doc["cooldownPeriodSeconds"] = rule.cooldown_period_seconds
    if rule.evaluation_interval_seconds is not None:
        doc["evaluationIntervalSeconds"] = rule.evaluation_interval_seconds
    if rule.prometheus is not None:
        source = rule.prometheus
        prometheus: dict[str, Any] = {}
        if source.workspace_id is not None:
            prometheus["workspaceId"] = source.workspace_id
        if source.url is not None:
            prometheus["url"] = source.url
        if source.region is not None:
            prometheus["region"] = source.region
        if source.url is not None and source.sigv4:
            prometheus["sigv4"] = True
        doc["prometheus"] = prometheus
    return doc
