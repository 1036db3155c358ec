"""HorizontalPodAutoscaler manifests (autoscaling/v2, v2beta2, v2beta1, v1) to rule documents.

The HPA names a metric of the custom/external metrics API; the PromQL behind it lives in the
Prometheus Adapter configuration, so Pods/Object/External metrics are converted through
``ampscaler.importers.adapter``. CPU/memory (``Resource``/``ContainerResource``) metrics have
no PromQL equivalent in the rule format and are reported, per metric, as not convertible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ampscaler.documents import load_json
from ampscaler.importers.adapter import (
    AdapterConfig,
    AdapterLookupError,
    render_external_query,
    render_object_query,
    render_pods_query,
)
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
from ampscaler.quantity import parse_quantity

HPA_KIND = "HorizontalPodAutoscaler"
HPA_API_VERSIONS = ("autoscaling/v2", "autoscaling/v2beta2", "autoscaling/v2beta1", "autoscaling/v1")
# autoscaling/v1 HPAs carried v2beta1 metrics in this annotation before v2 existed.
V1_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
KEDA_OWNER_LABEL = "scaledobject.keda.sh/name"


# What to query instead of a Resource metric, for the hint (cAdvisor series as scraped on EKS).
_RESOURCE_SERIES = {
    "cpu": " (e.g. rate(container_cpu_usage_seconds_total[2m]))",
    "memory": " (e.g. container_memory_working_set_bytes)",
}


class _NotConvertible(Exception):
    """One metric cannot become a rule metric; the message is the reason."""


def convert_hpa(
    manifest: Mapping[str, Any], cluster: str | None, adapter: AdapterConfig | None
) -> ItemResult:
    """Convert one HorizontalPodAutoscaler into a rule document.

    Parameters
    ----------
    manifest
        The HPA as read from YAML (any of autoscaling/v2, v2beta2, v2beta1, v1).
    cluster
        ``target.cluster`` for the rule; None leaves it to the stack default.
    adapter
        The Prometheus Adapter configuration that serves the HPA's custom/external metrics;
        None when not given, in which case only the reason is reported for such metrics.

    Returns
    -------
    ItemResult
        The document (None when no metric converted) and a problem per metric left out.
    """
    result = ItemResult(item_ref(manifest))
    meta = as_mapping(manifest.get("metadata"))
    spec = as_mapping(manifest.get("spec"))
    api_version = str(manifest.get("apiVersion", ""))
    if api_version not in HPA_API_VERSIONS:
        result.skip(f"apiVersion {api_version!r} is not one of {', '.join(HPA_API_VERSIONS)}")
        return result
    owner = as_mapping(meta.get("labels")).get(KEDA_OWNER_LABEL) or next(
        (
            o.get("name")
            for o in map(as_mapping, as_list(meta.get("ownerReferences")))
            if o.get("kind") == "ScaledObject"
        ),
        None,
    )
    if owner:
        result.skip(f"created by KEDA for ScaledObject {owner!r}; import the ScaledObject instead")
        return result

    ref = as_mapping(spec.get("scaleTargetRef"))
    if not ref.get("name") or not ref.get("kind"):
        result.skip("spec.scaleTargetRef needs kind and name", "spec.scaleTargetRef")
        return result
    if "maxReplicas" not in spec:
        result.skip("spec.maxReplicas is required", "spec.maxReplicas")
        return result
    # The API server defaults minReplicas to 1.
    min_replicas = integer_field(spec, "minReplicas", 1, result, "spec.minReplicas")
    max_replicas = integer_field(spec, "maxReplicas", 0, result, "spec.maxReplicas")
    if min_replicas is None or max_replicas is None:
        return result
    doc = new_rule_document(
        target_document(
            cluster, result.ref.namespace, str(ref["kind"]), str(ref["name"]), ref.get("apiVersion")
        ),
        min_replicas,
        max_replicas,
    )
    if min_replicas == 0:
        result.note(
            "minReplicas 0 (HPAScaleToZero): ampscaler scales to and from zero KEDA-style, on each "
            "metric's activationThreshold (0 here) after cooldownPeriodSeconds (300)"
        )

    metrics, path = _metric_specs(api_version, spec, meta, result)
    taken: set[str] = set()
    for index, metric in enumerate(metrics):
        where = f"{path}[{index}]"
        try:
            converted = _convert_metric(metric, result.ref.namespace, adapter)
        except _NotConvertible as exc:
            result.skip(str(exc), where)
            continue
        converted["name"] = unique_metric_name(str(converted["name"]), taken)
        doc["metrics"].append(converted)

    behavior = copy_behavior(spec.get("behavior"))
    if behavior is not None:
        doc["behavior"] = behavior
    if doc["metrics"]:
        result.document = doc
    elif not result.problems:
        result.skip("no metrics to convert", "spec.metrics")
    return result


def _metric_specs(
    api_version: str, spec: Mapping[str, Any], meta: Mapping[str, Any], result: ItemResult
) -> tuple[list[dict[str, Any]], str]:
    """The HPA's metrics in autoscaling/v2 shape, and the manifest path they came from."""
    if api_version == "autoscaling/v1":
        metrics: list[dict[str, Any]] = []
        raw = as_mapping(meta.get("annotations")).get(V1_METRICS_ANNOTATION)
        if raw:
            try:
                metrics = [_from_v2beta1(as_mapping(m)) for m in as_list(load_json(str(raw)))]
            except ValueError as exc:
                result.skip(
                    f"annotation is not a JSON list of metrics: {exc}",
                    f"metadata.annotations[{V1_METRICS_ANNOTATION}]",
                )
        # targetCPUUtilizationPercentage defaults to 80 when no other metric is given.
        cpu = spec.get("targetCPUUtilizationPercentage", 80 if not metrics else None)
        if cpu is not None:
            result.skip(
                f"CPU utilization target ({cpu}%) is a Resource metric; ampscaler rules scale on PromQL only",
                "spec.targetCPUUtilizationPercentage",
            )
        return metrics, f"metadata.annotations[{V1_METRICS_ANNOTATION}]"
    raw_metrics = [as_mapping(m) for m in as_list(spec.get("metrics"))]
    if api_version == "autoscaling/v2beta1":
        return [_from_v2beta1(m) for m in raw_metrics], "spec.metrics"
    return raw_metrics, "spec.metrics"


def _from_v2beta1(metric: Mapping[str, Any]) -> dict[str, Any]:
    """A v2beta1 MetricSpec in v2 shape.

    Upstream: the apiserver's v2beta1 conversions — Object/External use ``AverageValue`` when
    ``averageValue``/``targetAverageValue`` is set and ``Value`` otherwise.
    """
    kind = str(metric.get("type", ""))
    if kind == "Pods":
        src = as_mapping(metric.get("pods"))
        return {
            "type": "Pods",
            "pods": {
                "metric": {"name": src.get("metricName"), "selector": src.get("selector")},
                "target": {"type": "AverageValue", "averageValue": src.get("targetAverageValue")},
            },
        }
    if kind == "Object":
        src = as_mapping(metric.get("object"))
        if src.get("averageValue") is not None:
            target = {"type": "AverageValue", "averageValue": src.get("averageValue")}
        else:
            target = {"type": "Value", "value": src.get("targetValue")}
        return {
            "type": "Object",
            "object": {
                "describedObject": src.get("target"),
                "metric": {"name": src.get("metricName"), "selector": src.get("selector")},
                "target": target,
            },
        }
    if kind == "External":
        src = as_mapping(metric.get("external"))
        if src.get("targetAverageValue") is not None:
            target = {"type": "AverageValue", "averageValue": src.get("targetAverageValue")}
        else:
            target = {"type": "Value", "value": src.get("targetValue")}
        return {
            "type": "External",
            "external": {
                "metric": {"name": src.get("metricName"), "selector": src.get("metricSelector")},
                "target": target,
            },
        }
    # Resource/ContainerResource keep their v2beta1 body; only their name is reported.
    return dict(metric)


def _convert_metric(
    metric: Mapping[str, Any], namespace: str, adapter: AdapterConfig | None
) -> dict[str, Any]:
    kind = str(metric.get("type", ""))
    if kind in ("Resource", "ContainerResource"):
        body = as_mapping(metric.get("resource" if kind == "Resource" else "containerResource"))
        container = f" of container {body['container']!r}" if body.get("container") else ""
        example = _RESOURCE_SERIES.get(str(body.get("name")), "")
        raise _NotConvertible(
            f"{kind} metric {body.get('name', '?')}{container} is read from the resource metrics API "
            "(metrics-server), not PromQL; ampscaler rules cover Pods/Object/External metrics only — "
            f"write a Pods metric with a PromQL query{example} instead"
        )
    if kind not in ("Pods", "Object", "External"):
        raise _NotConvertible(f"metric type {kind!r} is not one of Pods/Object/External")
    body = as_mapping(metric.get(kind.lower()))
    ident = as_mapping(body.get("metric"))
    name = str(ident.get("name") or "")
    if not name:
        raise _NotConvertible(f"{kind} metric has no metric name")
    target = _target(kind, as_mapping(body.get("target")))
    if adapter is None:
        raise _NotConvertible(
            f"{kind} metric {name!r} comes from the {'external' if kind == 'External' else 'custom'} metrics "
            "API; pass --adapter-config with the Prometheus Adapter configuration that serves it"
        )
    try:
        if kind == "External":
            resolved = adapter.resolve(name, "externalRules")
            query = render_external_query(resolved, namespace, ident.get("selector"))
            return {"name": name, "type": "External", "query": query, "target": target}
        resolved = adapter.resolve(name, "rules")
        if kind == "Pods":
            query, pod_label = render_pods_query(resolved, namespace, ident.get("selector"))
            return {"name": name, "type": "Pods", "query": query, "podLabel": pod_label, "target": target}
        described = as_mapping(body.get("describedObject"))
        if not described.get("kind") or not described.get("name"):
            raise _NotConvertible("Object metric needs describedObject kind and name")
        query = render_object_query(
            resolved,
            namespace,
            str(described["kind"]),
            str(described.get("apiVersion") or ""),
            str(described["name"]),
            ident.get("selector"),
        )
        return {"name": name, "type": "Object", "query": query, "target": target}
    except AdapterLookupError as exc:
        raise _NotConvertible(str(exc)) from exc


def _target(kind: str, target: Mapping[str, Any]) -> dict[str, Any]:
    target_type = str(target.get("type", ""))
    allowed = ("AverageValue",) if kind == "Pods" else ("Value", "AverageValue")
    if target_type not in allowed:
        raise _NotConvertible(f"{kind} metric target type {target_type!r} is not {' or '.join(allowed)}")
    key = "value" if target_type == "Value" else "averageValue"
    try:
        amount = parse_quantity(target.get(key))
    except ValueError as exc:
        raise _NotConvertible(f"target.{key}: {exc}") from exc
    return {"type": target_type, key: amount}
