"""The API server's HorizontalPodAutoscaler validation, so an object it would refuse is never converted.

Upstream: kubernetes pkg/apis/autoscaling/validation/validation.go
(``validateHorizontalPodAutoscalerSpec``, ``validateMetrics``, ``validateMetricSpec``, the
``validate*Source`` functions, ``validateMetricTarget``, ``validateBehavior``). The API server
validates the internal version, i.e. after conversion: v1's ``targetCPUUtilizationPercentage``
and v2beta1 metrics are checked in their autoscaling/v2 shape (``importers.hpa`` converts them
first), and errors name the v2 paths, as ``kubectl apply`` shows them. Messages follow
``field.Error.Error()``: ``<path>: <Type>: <value>: <detail>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ampscaler.importers.common import as_list, as_mapping
from ampscaler.quantity import quantity_decimal

# validation.go constants.
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600

# validMetricSourceTypes, in sets.List() (sorted) order as NotSupported prints them.
METRIC_SOURCE_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
# The MetricSpec member each type populates.
_SOURCE_FIELD = {
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "External": "external",
    "ContainerResource": "containerResource",
}
_SELECT_POLICIES = ("Disabled", "Max", "Min")
_POLICY_TYPES = ("Percent", "Pods")
# corevalidation.ValidateContainerResourceName: standard container resources, hugepages-*, or a
# fully-qualified extended resource name (domain/name).
_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _quoted(value: object) -> str:
    """A value as field.Invalid prints it (%#v-ish: strings quoted, numbers bare)."""
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _invalid(path: str, value: object, detail: str) -> str:
    return f"{path}: Invalid value: {_quoted(value)}: {detail}"


def _required(path: str, detail: str) -> str:
    return f"{path}: Required value" + (f": {detail}" if detail else "")


def _forbidden(path: str, detail: str) -> str:
    return f"{path}: Forbidden: {detail}"


def _not_supported(path: str, value: object, allowed: tuple[str, ...]) -> str:
    return f"{path}: Unsupported value: {_quoted(value)}: supported values: " + ", ".join(
        f'"{a}"' for a in allowed
    )


def _path_segment_errors(value: str) -> list[str]:
    """Upstream: pathvalidation.IsValidPathSegmentName."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _int(value: object) -> int | None:
    """An integer field's value; None when it is not an integer (the decoder would refuse it)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        return None
    return int(value)


def _quantity(value: object) -> Decimal | None:
    """A Quantity field's value; None when absent or not a quantity."""
    if value is None:
        return None
    try:
        return quantity_decimal(str(value).strip() if isinstance(value, str) else str(value))
    except ValueError:
        return None


def validate_hpa_spec(
    spec: Mapping[str, Any], metrics: list[dict[str, Any]], scale_to_zero: bool
) -> list[str]:
    """Every error the API server reports for this HPA spec, in its order.

    Parameters
    ----------
    spec
        ``spec`` of the HPA as written (for minReplicas, maxReplicas, scaleTargetRef, behavior).
    metrics
        The metrics in autoscaling/v2 shape (v1/v2beta1 already converted).
    scale_to_zero
        Whether the ``HPAScaleToZero`` feature gate is taken as enabled (minReplicas 0 allowed).

    Returns
    -------
    list[str]
        ``field.Error`` strings; empty when the API server accepts the spec.
    """
    errors: list[str] = []
    min_raw = spec.get("minReplicas")
    min_replicas = _int(min_raw) if min_raw is not None else None
    max_replicas = _int(spec.get("maxReplicas"))
    lower = 0 if scale_to_zero else 1
    if min_replicas is not None and min_replicas < lower:
        errors.append(_invalid("spec.minReplicas", min_replicas, f"must be greater than or equal to {lower}"))
    if max_replicas is not None and max_replicas < 1:
        errors.append(_invalid("spec.maxReplicas", max_replicas, "must be greater than 0"))
    if min_replicas is not None and max_replicas is not None and max_replicas < min_replicas:
        errors.append(
            _invalid("spec.maxReplicas", max_replicas, "must be greater than or equal to `minReplicas`")
        )
    errors.extend(_object_reference(as_mapping(spec.get("scaleTargetRef")), "spec.scaleTargetRef"))
    has_object_or_external = False
    for index, metric in enumerate(metrics):
        errors.extend(_metric_spec(metric, f"spec.metrics[{index}]"))
        has_object_or_external = has_object_or_external or metric.get("type") in ("Object", "External")
    if min_replicas == 0 and not has_object_or_external:
        errors.append(
            _forbidden(
                "spec.metrics",
                "must specify at least one Object or External metric to support scaling to zero replicas",
            )
        )
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        for direction in ("scaleUp", "scaleDown"):
            rules = behavior.get(direction)
            if isinstance(rules, dict):
                errors.extend(_scaling_rules(rules, f"spec.behavior.{direction}"))
    return errors


def _object_reference(ref: Mapping[str, Any], path: str) -> list[str]:
    """Upstream: ValidateCrossVersionObjectReference."""
    errors: list[str] = []
    for key in ("kind", "name"):
        value = str(ref.get(key) or "")
        if not value:
            errors.append(_required(f"{path}.{key}", ""))
        else:
            errors.extend(_invalid(f"{path}.{key}", value, msg) for msg in _path_segment_errors(value))
    return errors


def _metric_spec(metric: Mapping[str, Any], path: str) -> list[str]:
    """Upstream: validateMetricSpec — the type, its source block, and no other source block."""
    errors: list[str] = []
    kind = str(metric.get("type") or "")
    if not kind:
        errors.append(_required(f"{path}.type", "must specify a metric source type"))
    if kind not in METRIC_SOURCE_TYPES:
        errors.append(_not_supported(f"{path}.type", kind, METRIC_SOURCE_TYPES))
    present = [field for field in _SOURCE_FIELD.values() if metric.get(field) is not None]
    # Upstream validates only the first source block present, in this order.
    if present:
        first = present[0]
        body = as_mapping(metric.get(first))
        errors.extend(_SOURCE_VALIDATORS[first](body, f"{path}.{first}"))
    expected = _SOURCE_FIELD.get(kind)
    if expected is not None and metric.get(expected) is None:
        errors.append(
            _required(f"{path}.{expected}", "must populate information for the given metric source")
        )
    if len(present) != 1:
        for field in present:
            if field != expected:
                errors.append(_forbidden(f"{path}.{field}", "must populate the given metric source only"))
    return errors


def _metric_identifier(ident: Mapping[str, Any], path: str) -> list[str]:
    name = str(ident.get("name") or "")
    if not name:
        return [_required(f"{path}.name", "must specify a metric name")]
    return [_invalid(f"{path}.name", name, msg) for msg in _path_segment_errors(name)]


def _metric_target(target: Mapping[str, Any], path: str) -> list[str]:
    """Upstream: validateMetricTarget."""
    errors: list[str] = []
    kind = str(target.get("type") or "")
    if not kind:
        errors.append(_required(f"{path}.type", "must specify a metric target type"))
    if kind not in ("Utilization", "Value", "AverageValue"):
        errors.append(_invalid(f"{path}.type", kind, "must be either Utilization, Value, or AverageValue"))
    for key in ("value", "averageValue"):
        raw = target.get(key)
        if raw is None:
            continue
        amount = _quantity(raw)
        if amount is None:
            errors.append(
                _invalid(
                    f"{path}.{key}",
                    raw,
                    "quantities must match the regular expression "
                    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                )
            )
        elif amount <= 0:
            errors.append(_invalid(f"{path}.{key}", raw, "must be positive"))
    utilization = target.get("averageUtilization")
    if utilization is not None:
        as_int = _int(utilization)
        if as_int is None:
            errors.append(_invalid(f"{path}.averageUtilization", utilization, "must be an integer"))
        elif as_int < 1:
            errors.append(_invalid(f"{path}.averageUtilization", as_int, "must be greater than 0"))
    return errors


def _object_source(src: Mapping[str, Any], path: str) -> list[str]:
    target = as_mapping(src.get("target"))
    errors = _object_reference(as_mapping(src.get("describedObject")), f"{path}.describedObject")
    errors += _metric_identifier(as_mapping(src.get("metric")), f"{path}.metric")
    errors += _metric_target(target, f"{path}.target")
    if target.get("value") is None and target.get("averageValue") is None:
        errors.append(
            _required(f"{path}.target.averageValue", "must set either a target value or averageValue")
        )
    return errors


def _external_source(src: Mapping[str, Any], path: str) -> list[str]:
    target = as_mapping(src.get("target"))
    errors = _metric_identifier(as_mapping(src.get("metric")), f"{path}.metric")
    errors += _metric_target(target, f"{path}.target")
    if target.get("value") is None and target.get("averageValue") is None:
        errors.append(
            _required(
                f"{path}.target.averageValue", "must set either a target value for metric or a per-pod target"
            )
        )
    if target.get("value") is not None and target.get("averageValue") is not None:
        errors.append(
            _forbidden(
                f"{path}.target.value", "may not set both a target value for metric and a per-pod target"
            )
        )
    return errors


def _pods_source(src: Mapping[str, Any], path: str) -> list[str]:
    target = as_mapping(src.get("target"))
    errors = _metric_identifier(as_mapping(src.get("metric")), f"{path}.metric")
    errors += _metric_target(target, f"{path}.target")
    if target.get("averageValue") is None:
        errors.append(_required(f"{path}.target.averageValue", "must specify a positive target averageValue"))
    return errors


def _resource_target_errors(target: Mapping[str, Any], path: str) -> list[str]:
    errors = _metric_target(target, f"{path}.target")
    if target.get("averageUtilization") is None and target.get("averageValue") is None:
        errors.append(
            _required(
                f"{path}.target.averageUtilization",
                "must set either a target raw value or a target utilization",
            )
        )
    if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
        errors.append(
            _forbidden(
                f"{path}.target.averageValue", "may not set both a target raw value and a target utilization"
            )
        )
    return errors


def _resource_source(src: Mapping[str, Any], path: str) -> list[str]:
    errors: list[str] = []
    if not src.get("name"):
        errors.append(_required(f"{path}.name", "must specify a resource name"))
    return errors + _resource_target_errors(as_mapping(src.get("target")), path)


def _container_resource_source(src: Mapping[str, Any], path: str) -> list[str]:
    errors: list[str] = []
    name = str(src.get("name") or "")
    if not name:
        errors.append(_required(f"{path}.name", "must specify a resource name"))
    elif not (name in _STANDARD_CONTAINER_RESOURCES or name.startswith("hugepages-") or "/" in name):
        errors.append(_invalid(f"{path}.name", name, "must be a standard resource for containers"))
    container = str(src.get("container") or "")
    if not container:
        errors.append(_required(f"{path}.container", "must specify a container"))
    elif len(container) > 63 or not _DNS1123_LABEL.fullmatch(container):
        errors.append(
            _invalid(
                f"{path}.container",
                container,
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                "start and end with an alphanumeric character",
            )
        )
    return errors + _resource_target_errors(as_mapping(src.get("target")), path)


_SOURCE_VALIDATORS = {
    "object": _object_source,
    "pods": _pods_source,
    "resource": _resource_source,
    "external": _external_source,
    "containerResource": _container_resource_source,
}


def _scaling_rules(rules: Mapping[str, Any], path: str) -> list[str]:
    """Upstream: validateScalingRules and validateScalingPolicy.

    ``policies`` left out is defaulted by the API server (GenerateHPAScaleUpRules); only an
    explicitly empty list is refused.
    """
    errors: list[str] = []
    window = rules.get("stabilizationWindowSeconds")
    if window is not None:
        seconds = _int(window)
        if seconds is not None and seconds < 0:
            errors.append(
                _invalid(
                    f"{path}.stabilizationWindowSeconds", seconds, "must be greater than or equal to zero"
                )
            )
        if seconds is not None and seconds > MAX_STABILIZATION_WINDOW_SECONDS:
            errors.append(
                _invalid(
                    f"{path}.stabilizationWindowSeconds",
                    seconds,
                    f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}",
                )
            )
    select = rules.get("selectPolicy")
    if select is not None and select not in _SELECT_POLICIES:
        errors.append(_not_supported(f"{path}.selectPolicy", select, _SELECT_POLICIES))
    if "policies" in rules and not as_list(rules.get("policies")):
        errors.append(_required(f"{path}.policies", "must specify at least one Policy"))
    for index, raw in enumerate(as_list(rules.get("policies"))):
        policy = as_mapping(raw)
        where = f"{path}.policies[{index}]"
        if policy.get("type") not in _POLICY_TYPES:
            errors.append(_not_supported(f"{where}.type", policy.get("type") or "", _POLICY_TYPES))
        value = _int(policy.get("value"))
        if value is not None and value <= 0:
            errors.append(_invalid(f"{where}.value", value, "must be greater than zero"))
        period = _int(policy.get("periodSeconds"))
        if period is not None and period <= 0:
            errors.append(_invalid(f"{where}.periodSeconds", period, "must be greater than zero"))
        if period is not None and period > MAX_PERIOD_SECONDS:
            errors.append(
                _invalid(
                    f"{where}.periodSeconds", period, f"must be less than or equal to {MAX_PERIOD_SECONDS}"
                )
            )
    return errors
