"""HorizontalPodAutoscaler manifests (autoscaling/v2, v2beta2, v2beta1, v1) to rule documents.

The HPA names a metric of the custom/external metrics API; the PromQL behind it lives in the
Prometheus Adapter configuration, so Pods/Object/External metrics are converted through
``ampscaler.importers.adapter``. CPU/memory (``Resource``/``ContainerResource``) metrics copy
across in their autoscaling/v2 shape (the rule's default cAdvisor query reads them), with the
adapter's ``resourceRules`` as per-metric series overrides when given. An HPA the API server
would refuse (``importers.hpa_validation``) is refused whole, with the API server's reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ampscaler.documents import load_json
from ampscaler.importers.adapter import (
    NAMESPACE,
    POD,
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
from ampscaler.importers.hpa_validation import validate_hpa_spec
from ampscaler.quantity import parse_quantity

HPA_KIND = "HorizontalPodAutoscaler"
HPA_API_VERSIONS = ("autoscaling/v2", "autoscaling/v2beta2", "autoscaling/v2beta1", "autoscaling/v1")
# autoscaling/v1 HPAs carried v2beta1 metrics in this annotation before v2 existed.
V1_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
KEDA_OWNER_LABEL = "scaledobject.keda.sh/name"


# The resources a rule's Resource/ContainerResource metric can read (cAdvisor series exist for these).
RULE_RESOURCES = ("cpu", "memory")
# The API server's default when an HPA has no metrics (SetDefaults_HorizontalPodAutoscaler).
DEFAULT_CPU_UTILIZATION = 80


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

    metrics, paths = _metric_specs(api_version, spec, meta, result)
    if result.problems:
        return result
    if not metrics:
        # The API server stores an HPA without metrics with this one (autoscaling/v2 defaults).
        metrics = [
            _resource_spec(
                "Resource",
                "cpu",
                None,
                {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION},
            )
        ]
        paths = ["spec.metrics"]
        result.note(f"no metrics: the API server defaults to cpu Utilization {DEFAULT_CPU_UTILIZATION}%")
    # minReplicas 0 exists only where the HPAScaleToZero gate is on, so the object is judged with it.
    refused = validate_hpa_spec({"maxReplicas": 0, **spec}, metrics, scale_to_zero=True)
    if refused:
        for reason in refused:
            result.skip(f"the API server would reject this HorizontalPodAutoscaler: {reason}")
        return result

    ref = as_mapping(spec.get("scaleTargetRef"))
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

    taken: set[str] = set()
    for metric, where in zip(metrics, paths, strict=True):
        try:
            converted = _convert_metric(metric, result.ref.namespace, adapter, result)
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
) -> tuple[list[dict[str, Any]], list[str]]:
    """The HPA's metrics in autoscaling/v2 shape, and the manifest path each came from."""
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
        # Upstream Convert_v1_HorizontalPodAutoscaler_To_autoscaling_HorizontalPodAutoscaler: the
        # annotation's metrics first, then targetCPUUtilizationPercentage as a cpu Utilization metric.
        cpu = spec.get("targetCPUUtilizationPercentage")
        if cpu is not None:
            metrics.append(
                _resource_spec("Resource", "cpu", None, {"type": "Utilization", "averageUtilization": cpu})
            )
        annotation = f"metadata.annotations[{V1_METRICS_ANNOTATION}]"
        paths = [f"{annotation}[{i}]" for i in range(len(metrics))]
        if cpu is not None:
            paths[-1] = "spec.targetCPUUtilizationPercentage"
        return metrics, paths
    raw_metrics = [as_mapping(m) for m in as_list(spec.get("metrics"))]
    if api_version == "autoscaling/v2beta1":
        raw_metrics = [_from_v2beta1(m) for m in raw_metrics]
    return raw_metrics, [f"spec.metrics[{i}]" for i in range(len(raw_metrics))]


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
                # targetAverageValue is a non-pointer Quantity in v2beta1: absent reads as 0.
                "target": {"type": "AverageValue", "averageValue": src.get("targetAverageValue", "0")},
            },
        }
    if kind == "Object":
        src = as_mapping(metric.get("object"))
        # targetValue is a non-pointer Quantity carried into target.value either way, so an
        # Object metric on averageValue still needs a positive targetValue to validate.
        target = {"type": "Value", "value": src.get("targetValue", "0")}
        if src.get("averageValue") is not None:
            target = {**target, "type": "AverageValue", "averageValue": src.get("averageValue")}
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
    if kind in ("Resource", "ContainerResource"):
        # Upstream Convert_v2beta1_ResourceMetricSource_To_autoscaling_ResourceMetricSource: the
        # type follows the field set, Utilization winning when both are (validation then refuses it).
        src = as_mapping(metric.get("resource" if kind == "Resource" else "containerResource"))
        resource_target: dict[str, Any] = {}
        if src.get("targetAverageValue") is not None:
            resource_target = {"type": "AverageValue", "averageValue": src.get("targetAverageValue")}
        if src.get("targetAverageUtilization") is not None:
            resource_target = {
                **resource_target,
                "type": "Utilization",
                "averageUtilization": src.get("targetAverageUtilization"),
            }
        return _resource_spec(kind, src.get("name"), src.get("container"), resource_target)
    return dict(metric)


def _resource_spec(kind: str, name: object, container: object, target: dict[str, Any]) -> dict[str, Any]:
    """An autoscaling/v2 Resource or ContainerResource MetricSpec."""
    if kind == "Resource":
        return {"type": "Resource", "resource": {"name": name, "target": target}}
    return {
        "type": "ContainerResource",
        "containerResource": {"name": name, "container": container, "target": target},
    }


def _convert_metric(
    metric: Mapping[str, Any], namespace: str, adapter: AdapterConfig | None, result: ItemResult
) -> dict[str, Any]:
    kind = str(metric.get("type", ""))
    if kind in ("Resource", "ContainerResource"):
        return _convert_resource(kind, metric, adapter, result)
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
        resolved = adapter.resolve(
            name,
            "externalRules" if kind == "External" else "rules",
            (NAMESPACE, POD) if kind == "Pods" else (NAMESPACE,) if kind == "Object" else (),
        )
        if resolved.alternatives:
            result.note(
                f"{kind} metric {name!r}: read as series {resolved.series!r} ({resolved.rule.where}); "
                f"{', '.join(resolved.alternatives)} would also expose it — check which series exists"
            )
        if kind == "External":
            query = render_external_query(resolved, namespace, ident.get("selector"))
            return {"name": name, "type": "External", "query": query, "target": target}
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


def _convert_resource(
    kind: str, metric: Mapping[str, Any], adapter: AdapterConfig | None, result: ItemResult
) -> dict[str, Any]:
    """A Resource/ContainerResource metric as the rule's metric of the same shape.

    The HPA controller goes by which target field is set, not by ``target.type``
    (computeStatusForResourceMetric: ``averageValue`` first, else ``averageUtilization``), so
    the rule's target is built the same way.
    """
    field = "resource" if kind == "Resource" else "containerResource"
    body = as_mapping(metric.get(field))
    resource = str(body.get("name") or "")
    container = str(body.get("container") or "")
    of_container = f" of container {container!r}" if container else ""
    if resource not in RULE_RESOURCES:
        raise _NotConvertible(
            f"{kind} metric {resource}{of_container}: ampscaler reads cpu and memory usage from cAdvisor "
            f"series; there is no default series for {resource!r}"
        )
    raw_target = as_mapping(body.get("target"))
    target: dict[str, Any]
    if raw_target.get("averageValue") is not None:
        try:
            target = {"type": "AverageValue", "averageValue": parse_quantity(raw_target["averageValue"])}
        except ValueError as exc:
            raise _NotConvertible(f"{field}.target.averageValue: {exc}") from exc
    else:
        target = {"type": "Utilization", "averageUtilization": int(raw_target["averageUtilization"])}
    if raw_target.get("type") != target["type"]:
        result.note(
            f"{kind} {resource}{of_container}: target.type {raw_target.get('type')!r} with "
            f"{'averageValue' if target['type'] == 'AverageValue' else 'averageUtilization'} set; the HPA goes "
            f"by the field set, so the rule's target is {target['type']}"
        )
    converted_body: dict[str, Any] = {"name": resource}
    if kind == "ContainerResource":
        converted_body["container"] = container
    converted_body["target"] = target
    converted: dict[str, Any] = {
        "name": f"{resource}-{container}" if container else resource,
        "type": kind,
        field: converted_body,
    }
    if adapter is not None:
        series = adapter.resource_series.get(resource)
        if series:
            converted["series"] = dict(series)
    return converted
