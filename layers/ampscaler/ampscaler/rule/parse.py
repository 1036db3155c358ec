"""Parsing and validating raw rule documents into ``model.Rule`` (every problem at once)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, cast

from ampscaler.errors import RuleInvalidError
from ampscaler.model import (
    API_VERSION,
    DEFAULT_COOLDOWN_PERIOD_SECONDS,
    DEFAULT_POD_LABEL,
    Behavior,
    Fallback,
    FallbackBehavior,
    MetricSpec,
    MetricTarget,
    MetricType,
    PolicyType,
    PrometheusSource,
    ResourceName,
    ResourceSeries,
    Rule,
    ScaleTargetRef,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    TargetType,
)
from ampscaler.policy import MAX_INT32, MAX_REPLICAS_CEILING_ENV, RulePolicy
from ampscaler.quantity import parse_quantity
from ampscaler.rule.limits import (
    BEHAVIOR_FIELDS,
    CLUSTER_MAX,
    CLUSTER_RE,
    CONTAINER_RESOURCE_SOURCE_FIELDS,
    DEFAULT_API_VERSIONS,
    DEFAULT_POLICY,
    DEFAULT_SCALE_DOWN_RULES,
    DEFAULT_SCALE_UP_RULES,
    DNS1123_LABEL_RE,
    DNS1123_SUBDOMAIN_RE,
    FALLBACK_BEHAVIORS,
    FALLBACK_FIELDS,
    GROUP_VERSION_RE,
    KIND_RE,
    LABEL_NAME_RE,
    MAX_COOLDOWN_PERIOD_SECONDS,
    MAX_EVALUATION_INTERVAL_SECONDS,
    MAX_FAILURE_THRESHOLD,
    MAX_NUMBER,
    MAX_PERCENT,
    MAX_PERIOD_SECONDS,
    MAX_STABILIZATION_WINDOW_SECONDS,
    MAX_WINDOW_SECONDS,
    METRIC_FIELDS,
    METRIC_NAME_MAX,
    METRIC_NAME_RE,
    METRIC_TARGET_FIELDS,
    METRIC_TYPES,
    MIN_TARGET,
    POLICY_FIELDS,
    POLICY_TYPES,
    PROMETHEUS_FIELDS,
    REGION_RE,
    RESOURCE_METRIC_TYPES,
    RESOURCE_NAMES,
    RESOURCE_SOURCE_FIELDS,
    RESOURCE_TARGET_FIELDS,
    RESOURCE_TARGET_TYPES,
    ROOT_FIELDS,
    RULE_NAME_RE,
    SCALING_RULES_FIELDS,
    SELECT_POLICIES,
    SERIES_FIELDS,
    SERIES_NAME_RE,
    TARGET_REF_FIELDS,
    TARGET_TYPES,
    URL_RE,
    WORKSPACE_ID_RE,
)
from ampscaler.rule.messages import (
    ErrorList,
    child_path,
    index_path,
    json_type,
    show,
    suggest,
)
from ampscaler.rule.read import load_rule_text, read_rule_documents

_MISSING: Final = object()


def parse_rule(
    doc: Mapping[str, Any] | str,
    name: str | None = None,
    *,
    default_cluster: str | None = None,
    policy: RulePolicy | None = None,
) -> Rule:
    """Parse and validate one rule document into a ``Rule`` with every default filled in.

    Parameters
    ----------
    doc
        The rule as a mapping, or as JSON or YAML text (decoded by ``load_rule_text``).
    name
        The rule's name, normally the SSM parameter path relative to the rule prefix. Overrides
        the document's ``name``; without either the name is ``<cluster>/<namespace>/<target>``.
    default_cluster
        Cluster for a target that omits ``cluster`` (the stack's ``CLUSTER_NAME``). Without it,
        ``target.cluster`` is required.
    policy
        The operator's blast radius (allowed namespaces/clusters, replica ceiling); None is
        ``DEFAULT_POLICY`` (no system namespaces, ceiling 1000).

    Returns
    -------
    Rule
        The typed rule; ``Rule.source`` holds a deep copy of the raw document.

    Raises
    ------
    RuleInvalidError
        With every problem found, each ``json.path: message (hint)``.
    """
    if isinstance(doc, str):
        doc = load_rule_text(doc, name=name)
    errors = ErrorList()
    rule = build_rule(doc, errors, name=name, default_cluster=default_cluster, policy=policy)
    if errors or rule is None:
        doc_name = doc.get("name") if isinstance(doc, Mapping) else None
        raise RuleInvalidError(errors.items, name=name or (doc_name if isinstance(doc_name, str) else None))
    return rule


def build_rule(
    doc: object,
    errors: ErrorList,
    *,
    path: str = "",
    name: str | None = None,
    default_cluster: str | None = None,
    policy: RulePolicy | None = None,
) -> Rule | None:
    """Validate ``doc`` into a Rule, appending every problem to ``errors`` (paths under ``path``).

    The building block of ``parse_rule`` for callers that validate a larger document (the decide
    contract prefixes rule errors with ``rule.``). Returns None when anything is wrong.
    ``policy`` None is ``DEFAULT_POLICY``.
    """
    policy = policy or DEFAULT_POLICY
    raw = errors.mapping(
        doc,
        path,
        ROOT_FIELDS,
        required=("apiVersion", "target", "maxReplicas", "metrics"),
        required_hints={
            "apiVersion": f'set "apiVersion": "{API_VERSION}"',
            "maxReplicas": "the largest replica count the rule may set, e.g. 10",
            "metrics": "at least one metric the rule scales on",
        },
    )
    if raw is None:
        return None

    def p(key: str) -> str:
        return child_path(path, key)

    if "apiVersion" in raw and raw["apiVersion"] != API_VERSION:
        errors.add(p("apiVersion"), f"must be {show(API_VERSION)}, got {show(raw['apiVersion'])}")

    doc_name: str | None = None
    if "name" in raw:
        doc_name = errors.string(
            raw["name"], p("name"), RULE_NAME_RE, 1011, "letters, digits, '_', '.', '-' and '/' separators"
        )

    target = _target(raw["target"], p("target"), errors, default_cluster, policy) if "target" in raw else None

    min_replicas: int | None = 1  # Upstream: SetDefaults_HorizontalPodAutoscaler sets minReplicas 1.
    if "minReplicas" in raw:
        min_replicas = _replicas(raw["minReplicas"], p("minReplicas"), errors, 0, policy)
    max_replicas = (
        _replicas(raw["maxReplicas"], p("maxReplicas"), errors, 1, policy) if "maxReplicas" in raw else None
    )
    if min_replicas is not None and max_replicas is not None and max_replicas < min_replicas:
        errors.add(
            p("maxReplicas"),
            f"must be greater than or equal to minReplicas ({min_replicas}), got {max_replicas}",
        )

    metrics = _metrics(raw["metrics"], p("metrics"), errors) if "metrics" in raw else None
    if min_replicas == 0 and metrics and not any(m.type in ("Object", "External") for m in metrics):
        # Upstream: validateMetrics forbids minReplicas 0 without an Object or External metric;
        # at zero replicas no pod exists to report a Pods metric, so nothing could wake it.
        errors.add(
            p("metrics"),
            "must include at least one Object or External metric when minReplicas is 0",
            "a Pods metric has no pods to measure at zero replicas, so nothing could scale it back up",
        )

    behavior = _behavior(raw["behavior"], p("behavior"), errors, policy) if "behavior" in raw else None
    tolerance = None
    if "tolerance" in raw:
        tolerance = errors.number(raw["tolerance"], p("tolerance"), minimum=0.0, below=1.0)
    fallback = _fallback(raw["fallback"], p("fallback"), errors, policy) if "fallback" in raw else None
    paused = errors.boolean(raw["paused"], p("paused")) if "paused" in raw else False
    dry_run = errors.boolean(raw["dryRun"], p("dryRun")) if "dryRun" in raw else False
    cooldown: int | None = DEFAULT_COOLDOWN_PERIOD_SECONDS
    if "cooldownPeriodSeconds" in raw:
        cooldown = errors.integer(
            raw["cooldownPeriodSeconds"],
            p("cooldownPeriodSeconds"),
            minimum=0,
            maximum=MAX_COOLDOWN_PERIOD_SECONDS,
        )
    interval = None
    if "evaluationIntervalSeconds" in raw:
        interval = errors.integer(
            raw["evaluationIntervalSeconds"],
            p("evaluationIntervalSeconds"),
            minimum=1,
            maximum=MAX_EVALUATION_INTERVAL_SECONDS,
        )
    prometheus = _prometheus(raw["prometheus"], p("prometheus"), errors) if "prometheus" in raw else None

    if errors:
        return None
    assert target is not None and metrics is not None
    assert min_replicas is not None and max_replicas is not None and cooldown is not None
    assert paused is not None and dry_run is not None
    rule_name = name or doc_name or "/".join(x for x in (target.cluster, target.namespace, target.name) if x)
    return Rule(
        name=rule_name,
        target=target,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        metrics=metrics,
        behavior=behavior,
        tolerance=tolerance,
        fallback=fallback,
        paused=paused,
        dry_run=dry_run,
        cooldown_period_seconds=cooldown,
        evaluation_interval_seconds=interval,
        prometheus=prometheus,
        source=copy.deepcopy(dict(raw)),
    )


def _replicas(value: object, path: str, errors: ErrorList, minimum: int, policy: RulePolicy) -> int | None:
    """A replica count: an integer >= ``minimum`` and at most the operator's ceiling."""
    number = errors.integer(value, path, minimum=minimum)
    if number is not None and number > policy.max_replicas_ceiling:
        errors.add(
            path,
            f"must be at most {policy.max_replicas_ceiling} (the operator's {MAX_REPLICAS_CEILING_ENV}), "
            f"got {show(number)}",
        )
        return None
    return number


def _target(
    value: object, path: str, errors: ErrorList, default_cluster: str | None, policy: RulePolicy
) -> ScaleTargetRef | None:
    required = ["namespace", "kind", "name"]
    if default_cluster is None:
        required.insert(0, "cluster")
    raw = errors.mapping(
        value,
        path,
        TARGET_REF_FIELDS,
        required=required,
        required_hints={
            "cluster": "the EKS cluster name; or set CLUSTER_NAME for the scaler",
            "kind": "e.g. Deployment or StatefulSet",
        },
    )
    if raw is None:
        return None
    n = errors.items.__len__()
    cluster: str | None = default_cluster
    if "cluster" in raw:
        cluster = errors.string(
            raw["cluster"], child_path(path, "cluster"), CLUSTER_RE, CLUSTER_MAX, "an EKS cluster name"
        )
    namespace = (
        errors.string(
            raw["namespace"],
            child_path(path, "namespace"),
            DNS1123_LABEL_RE,
            63,
            "lower-case letters, digits and '-'",
        )
        if "namespace" in raw
        else None
    )
    kind: str | None = None
    if "kind" in raw:
        kind_hint = None
        if isinstance(raw["kind"], str) and raw["kind"].lower() in {k.lower() for k in DEFAULT_API_VERSIONS}:
            kind_hint = suggest(raw["kind"], DEFAULT_API_VERSIONS)
        kind = errors.string(
            raw["kind"], child_path(path, "kind"), KIND_RE, 63, kind_hint or "a CamelCase kind"
        )
    target_name = (
        errors.string(
            raw["name"], child_path(path, "name"), DNS1123_SUBDOMAIN_RE, 253, "a Kubernetes object name"
        )
        if "name" in raw
        else None
    )
    api_version: str | None = None
    if "apiVersion" in raw:
        api_version = errors.string(
            raw["apiVersion"],
            child_path(path, "apiVersion"),
            GROUP_VERSION_RE,
            253,
            "group/version, e.g. apps/v1",
        )
    elif kind is not None:
        api_version = DEFAULT_API_VERSIONS.get(kind)
        if api_version is None:
            errors.add(
                child_path(path, "apiVersion"),
                f"required for kind {kind}",
                "only Deployment and StatefulSet default to apps/v1; e.g. argoproj.io/v1alpha1",
            )
    if namespace is not None and (problem := policy.namespace_problem(namespace)) is not None:
        errors.add(child_path(path, "namespace"), problem)
    if cluster and (problem := policy.cluster_problem(cluster)) is not None:
        errors.add(child_path(path, "cluster") if "cluster" in raw else path, problem)
    if len(errors.items) > n or None in (cluster, namespace, kind, target_name, api_version):
        return None
    assert cluster is not None and namespace is not None and kind is not None
    assert target_name is not None and api_version is not None
    return ScaleTargetRef(
        cluster=cluster, namespace=namespace, kind=kind, name=target_name, api_version=api_version
    )


def _metrics(value: object, path: str, errors: ErrorList) -> tuple[MetricSpec, ...] | None:
    if not isinstance(value, list):
        errors.add(path, f"must be an array of metrics, got {json_type(value)}")
        return None
    if not value:
        errors.add(path, "must list at least one metric")
        return None
    n = len(errors.items)
    specs: list[MetricSpec] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        spec = _metric(item, index_path(path, i), errors)
        if spec is not None:
            specs.append(spec)
        # Checked on the raw name so a duplicate is reported even when the metric has other errors;
        # a Resource metric without a name takes its default name ("cpu", "memory-app").
        raw_name = item.get("name") if isinstance(item, Mapping) else None
        defaulted = False
        if raw_name is None and isinstance(item, Mapping):
            raw_name = default_metric_name(item)
            defaulted = raw_name is not None
        if not isinstance(raw_name, str):
            continue
        if raw_name in seen:
            errors.add(
                child_path(index_path(path, i), "name"),
                f"duplicate metric name {show(raw_name)}"
                + (" (the default name of this metric)" if defaulted else ""),
                f"already used by {index_path(path, seen[raw_name])}" + ("; set name" if defaulted else ""),
            )
        else:
            seen[raw_name] = i
    return tuple(specs) if len(errors.items) == n else None


def default_metric_name(raw: Mapping[str, Any]) -> str | None:
    """The name a Resource/ContainerResource metric gets when the document gives none.

    ``cpu`` or ``memory`` for a Resource metric, ``<resource>-<container>`` for a
    ContainerResource metric (``memory-app``), so an HPA's metric pastes in without inventing a
    name. None for other types or when the fields it is built from are malformed.
    """
    metric_type = raw.get("type")
    key = {"Resource": "resource", "ContainerResource": "containerResource"}.get(
        metric_type if isinstance(metric_type, str) else ""
    )
    source = raw.get(key) if key else None
    if not isinstance(source, Mapping) or source.get("name") not in RESOURCE_NAMES:
        return None
    if metric_type == "Resource":
        return str(source["name"])
    container = source.get("container")
    if not isinstance(container, str) or not DNS1123_LABEL_RE.fullmatch(container):
        return None
    return f"{source['name']}-{container}"


def _metric(value: object, path: str, errors: ErrorList) -> MetricSpec | None:
    raw_type = value.get("type") if isinstance(value, Mapping) else None
    is_resource = raw_type in RESOURCE_METRIC_TYPES
    if raw_type == "ContainerResource":
        required: tuple[str, ...] = ("type", "containerResource")
    elif raw_type == "Resource":
        required = ("type", "resource")
    else:
        required = ("name", "type", "query", "target")
    raw = errors.mapping(
        value,
        path,
        METRIC_FIELDS,
        required=required,
        required_hints={
            "type": "Pods, Object, External, Resource or ContainerResource",
            "query": "the PromQL expression",
            "resource": 'e.g. {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}',
            "containerResource": 'e.g. {"name": "cpu", "container": "app", "target": {"type": '
            '"Utilization", "averageUtilization": 60}}',
        },
    )
    if raw is None:
        return None
    n = len(errors.items)

    def at(key: str) -> str:
        return child_path(path, key)

    metric_type = (
        cast(MetricType | None, errors.choice(raw["type"], at("type"), METRIC_TYPES))
        if "type" in raw
        else None
    )
    name: str | None = None
    if "name" in raw:
        name = errors.string(
            raw["name"],
            at("name"),
            METRIC_NAME_RE,
            METRIC_NAME_MAX,
            "a letter, then letters, digits, '_' or '-'",
        )
    elif is_resource:
        name = default_metric_name(raw)
        if name is not None and len(name) > METRIC_NAME_MAX:
            errors.add(
                at("name"),
                f"required: the default name {show(name)} is longer than {METRIC_NAME_MAX} characters",
                "set a shorter name",
            )
            name = None
    query: str | None = ""
    if "query" in raw:
        query = errors.string(raw["query"], at("query"), hint="a PromQL expression")
    resource: ResourceName | None = None
    container: str | None = None
    series: ResourceSeries | None = None
    target: MetricTarget | None = None
    if is_resource:
        key = "resource" if metric_type == "Resource" else "containerResource"
        for wrong in ("target", "podLabel", "activationThreshold", "emptyAs"):
            if wrong in raw:
                hint = f"set {key}.target" if wrong == "target" else "remove it"
                errors.add(at(wrong), f"does not apply to {metric_type} metrics", hint)
        other = "containerResource" if key == "resource" else "resource"
        if other in raw:
            errors.add(at(other), f"must not be set for a {metric_type} metric", f"use {key}")
        if key in raw:
            source = _resource_source(raw[key], at(key), errors, metric_type == "ContainerResource")
            if source is not None:
                resource, container, target = source
        if "series" in raw:
            series = _series(raw["series"], at("series"), errors, resource)
    else:
        for wrong in ("resource", "containerResource", "series"):
            if wrong in raw and metric_type is not None:
                errors.add(
                    at(wrong), f"only applies to Resource and ContainerResource metrics, not {metric_type}"
                )
        if "target" in raw:
            target = _metric_target(raw["target"], at("target"), errors, metric_type)
    pod_label = DEFAULT_POD_LABEL
    if "podLabel" in raw and not is_resource:
        if metric_type is not None and metric_type != "Pods":
            errors.add(at("podLabel"), f"only applies to Pods metrics, not {metric_type}", "remove it")
        else:
            pod_label = (
                errors.string(raw["podLabel"], at("podLabel"), LABEL_NAME_RE, hint="a Prometheus label name")
                or ""
            )
    activation = 0.0
    if "activationThreshold" in raw and not is_resource:
        activation = (
            errors.number(
                raw["activationThreshold"], at("activationThreshold"), minimum=0.0, maximum=MAX_NUMBER
            )
            or 0.0
        )
    empty_as = (
        errors.number(raw["emptyAs"], at("emptyAs"), minimum=-MAX_NUMBER, maximum=MAX_NUMBER)
        if "emptyAs" in raw and not is_resource
        else None
    )
    if len(errors.items) > n or name is None or metric_type is None or query is None or target is None:
        return None
    return MetricSpec(
        name=name,
        type=metric_type,
        query=query,
        target=target,
        pod_label=pod_label,
        activation_threshold=activation,
        empty_as=empty_as,
        resource=resource,
        container=container,
        series=series,
    )


def _resource_source(
    value: object, path: str, errors: ErrorList, with_container: bool
) -> tuple[ResourceName, str | None, MetricTarget] | None:
    """Upstream: validateResourceSource / validateContainerResourceSource (+ validateMetricTarget)."""
    raw = errors.mapping(
        value,
        path,
        CONTAINER_RESOURCE_SOURCE_FIELDS if with_container else RESOURCE_SOURCE_FIELDS,
        required=("name", "container", "target") if with_container else ("name", "target"),
        required_hints={
            "name": "cpu or memory",
            "container": "the name of the container whose usage and requests count",
            "target": '{"type": "Utilization", "averageUtilization": N} or '
            '{"type": "AverageValue", "averageValue": Q}',
        },
    )
    if raw is None:
        return None
    n = len(errors.items)
    resource = (
        cast(ResourceName | None, errors.choice(raw["name"], child_path(path, "name"), RESOURCE_NAMES))
        if "name" in raw
        else None
    )
    container: str | None = None
    if with_container and "container" in raw:
        container = errors.string(
            raw["container"], child_path(path, "container"), DNS1123_LABEL_RE, 63, "a container name"
        )
    target = _resource_target(raw["target"], child_path(path, "target"), errors) if "target" in raw else None
    if len(errors.items) > n or resource is None or target is None:
        return None
    return resource, container, target


def _resource_target(value: object, path: str, errors: ErrorList) -> MetricTarget | None:
    raw = errors.mapping(
        value,
        path,
        RESOURCE_TARGET_FIELDS,
        required=("type",),
        required_hints={"type": "Utilization or AverageValue"},
    )
    if raw is None:
        return None
    n = len(errors.items)
    target_type: TargetType | None = None
    if "type" in raw:
        target_type = cast(
            TargetType | None, errors.choice(raw["type"], child_path(path, "type"), RESOURCE_TARGET_TYPES)
        )
        if target_type is None and raw["type"] == "Value":
            errors.items[-1] += (
                " (a Resource target is a percentage of the pods' requests or a per-pod average, "
                "as in the HPA)"
            )
    utilization: int | None = None
    if "averageUtilization" in raw:
        # Upstream: int32, "must be greater than 0"; above 100 is allowed (usage beyond requests).
        utilization = errors.integer(
            raw["averageUtilization"], child_path(path, "averageUtilization"), minimum=1, maximum=MAX_INT32
        )
    average: float | None = None
    if "averageValue" in raw:
        average = _quantity(raw["averageValue"], child_path(path, "averageValue"), errors)
    if target_type is not None:
        wanted = "averageUtilization" if target_type == "Utilization" else "averageValue"
        other = "averageValue" if target_type == "Utilization" else "averageUtilization"
        if wanted not in raw:
            errors.add(child_path(path, wanted), f"required when target.type is {target_type}")
        if other in raw:
            # Upstream: "may not set both a target raw value and a target utilization".
            errors.add(
                child_path(path, other),
                f"must not be set when target.type is {target_type}",
                f"set {wanted} instead",
            )
    if len(errors.items) > n or target_type is None:
        return None
    return MetricTarget(type=target_type, average_value=average, average_utilization=utilization)


def _quantity(value: object, path: str, errors: ErrorList) -> float | None:
    """A positive target amount: a JSON number or a Kubernetes quantity string ("500m", "512Mi")."""
    if isinstance(value, str):
        try:
            value = parse_quantity(value)
        except ValueError:
            errors.add(
                path,
                f"must be a positive number or quantity, got {show(value)}",
                'e.g. 0.5 or "500m" for cpu cores, "512Mi" for memory bytes',
            )
            return None
    return errors.number(value, path, positive=True, minimum=MIN_TARGET, maximum=MAX_NUMBER)


def _series(
    value: object, path: str, errors: ErrorList, resource: ResourceName | None
) -> ResourceSeries | None:
    """Per-rule overrides of the default query's series and label names and of the CPU window."""
    raw = errors.mapping(value, path, SERIES_FIELDS)
    if raw is None:
        return None
    n = len(errors.items)

    def label(key: str) -> str | None:
        if key not in raw:
            return None
        return errors.string(raw[key], child_path(path, key), LABEL_NAME_RE, 200, "a Prometheus label name")

    metric: str | None = None
    if "metric" in raw:
        metric = errors.string(
            raw["metric"], child_path(path, "metric"), SERIES_NAME_RE, 200, "a Prometheus metric name"
        )
    namespace_label, pod_label, container_label = (
        label("namespaceLabel"),
        label("podLabel"),
        label("containerLabel"),
    )
    window: int | None = None
    if "windowSeconds" in raw:
        if resource == "memory":
            errors.add(
                child_path(path, "windowSeconds"),
                "only applies to cpu (the rate window of a CPU counter)",
                "memory is a gauge read at the sample time; remove it",
            )
        else:
            window = errors.integer(
                raw["windowSeconds"], child_path(path, "windowSeconds"), minimum=1, maximum=MAX_WINDOW_SECONDS
            )
    if len(errors.items) > n:
        return None
    return ResourceSeries(
        cpu_metric=metric if resource == "cpu" else None,
        memory_metric=metric if resource == "memory" else None,
        namespace_label=namespace_label,
        pod_label=pod_label,
        container_label=container_label,
        window_seconds=window,
    )


def _metric_target(
    value: object, path: str, errors: ErrorList, metric_type: MetricType | None
) -> MetricTarget | None:
    raw = errors.mapping(
        value,
        path,
        METRIC_TARGET_FIELDS,
        required=("type",),
        required_hints={"type": "Value or AverageValue"},
    )
    if raw is None:
        return None
    n = len(errors.items)
    target_type = (
        cast(TargetType | None, errors.choice(raw["type"], child_path(path, "type"), TARGET_TYPES))
        if "type" in raw
        else None
    )
    if target_type is None and raw.get("type") == "Utilization":
        errors.items[-1] += " (Utilization applies only to Resource and ContainerResource metrics)"
    if target_type == "Value" and metric_type == "Pods":
        # Upstream: validatePodsSource requires target.averageValue.
        errors.add(
            child_path(path, "type"), "must be AverageValue for a Pods metric", 'use "type": "AverageValue"'
        )
    amounts: dict[str, float | None] = {}
    for key in ("value", "averageValue"):
        if key in raw:
            amounts[key] = errors.number(
                raw[key], child_path(path, key), positive=True, minimum=MIN_TARGET, maximum=MAX_NUMBER
            )
    if target_type is not None:
        wanted = "value" if target_type == "Value" else "averageValue"
        other = "averageValue" if wanted == "value" else "value"
        if wanted not in raw:
            errors.add(child_path(path, wanted), f"required when target.type is {target_type}")
        if other in raw:
            errors.add(
                child_path(path, other),
                f"must not be set when target.type is {target_type}",
                f"set {wanted} instead",
            )
    if len(errors.items) > n or target_type is None:
        return None
    return MetricTarget(
        type=target_type, value=amounts.get("value"), average_value=amounts.get("averageValue")
    )


def _behavior(value: object, path: str, errors: ErrorList, policy: RulePolicy) -> Behavior | None:
    raw = errors.mapping(value, path, BEHAVIOR_FIELDS)
    if raw is None:
        return None
    n = len(errors.items)
    # Upstream: SetDefaults_HorizontalPodAutoscalerBehavior -> GenerateHPAScale{Up,Down}Rules:
    # an absent direction gets its full defaults; a present one overrides field by field.
    up = _scaling_rules(
        raw.get("scaleUp", _MISSING), child_path(path, "scaleUp"), errors, DEFAULT_SCALE_UP_RULES, policy
    )
    down = _scaling_rules(
        raw.get("scaleDown", _MISSING),
        child_path(path, "scaleDown"),
        errors,
        DEFAULT_SCALE_DOWN_RULES,
        policy,
    )
    if len(errors.items) > n or up is None or down is None:
        return None
    return Behavior(scale_up=up, scale_down=down)


def _scaling_rules(
    value: object, path: str, errors: ErrorList, defaults: ScalingRules, policy: RulePolicy
) -> ScalingRules | None:
    """Upstream: copyHPAScalingRules (defaults) + validateScalingRules (limits)."""
    if value is _MISSING:
        return defaults
    raw = errors.mapping(value, path, SCALING_RULES_FIELDS)
    if raw is None:
        return None
    n = len(errors.items)
    window = defaults.stabilization_window_seconds
    if "stabilizationWindowSeconds" in raw:
        window = errors.integer(
            raw["stabilizationWindowSeconds"],
            child_path(path, "stabilizationWindowSeconds"),
            minimum=0,
            maximum=MAX_STABILIZATION_WINDOW_SECONDS,
        )
    select = defaults.select_policy
    if "selectPolicy" in raw:
        select = cast(
            SelectPolicy,
            errors.choice(raw["selectPolicy"], child_path(path, "selectPolicy"), SELECT_POLICIES),
        )
    policies: tuple[ScalingPolicy, ...] | None = defaults.policies
    if "policies" in raw:
        policies = _policies(raw["policies"], child_path(path, "policies"), errors, policy)
    tolerance = defaults.tolerance
    if "tolerance" in raw:
        tolerance = errors.number(raw["tolerance"], child_path(path, "tolerance"), minimum=0.0, below=1.0)
    if len(errors.items) > n or policies is None:
        return None
    return ScalingRules(
        stabilization_window_seconds=window, select_policy=select, policies=policies, tolerance=tolerance
    )


def _policies(
    value: object, path: str, errors: ErrorList, policy: RulePolicy
) -> tuple[ScalingPolicy, ...] | None:
    if not isinstance(value, list):
        errors.add(path, f"must be an array of policies, got {json_type(value)}")
        return None
    if not value:
        # Upstream: an explicit empty list survives defaulting and fails "must specify at least one Policy".
        errors.add(path, "must specify at least one policy", "remove policies to get the defaults")
        return None
    n = len(errors.items)
    result: list[ScalingPolicy] = []
    for i, item in enumerate(value):
        at = index_path(path, i)
        raw = errors.mapping(
            item, at, POLICY_FIELDS, required=POLICY_FIELDS, required_hints={"type": "Pods or Percent"}
        )
        if raw is None:
            continue
        policy_type = (
            errors.choice(raw["type"], child_path(at, "type"), POLICY_TYPES) if "type" in raw else None
        )
        amount: int | None = None
        if "value" in raw and policy_type == "Pods":
            amount = _replicas(raw["value"], child_path(at, "value"), errors, 1, policy)
        elif "value" in raw:
            amount = errors.integer(raw["value"], child_path(at, "value"), minimum=1, maximum=MAX_PERCENT)
        period = (
            errors.integer(
                raw["periodSeconds"], child_path(at, "periodSeconds"), minimum=1, maximum=MAX_PERIOD_SECONDS
            )
            if "periodSeconds" in raw
            else None
        )
        if policy_type is not None and amount is not None and period is not None:
            result.append(
                ScalingPolicy(type=cast(PolicyType, policy_type), value=amount, period_seconds=period)
            )
    return tuple(result) if len(errors.items) == n else None


def _fallback(value: object, path: str, errors: ErrorList, policy: RulePolicy) -> Fallback | None:
    raw = errors.mapping(
        value,
        path,
        FALLBACK_FIELDS,
        required=("failureThreshold", "replicas"),
        required_hints={
            "failureThreshold": "consecutive all-failed evaluations before falling back, e.g. 3",
            "replicas": "the replica count to hold while metrics fail",
        },
    )
    if raw is None:
        return None
    n = len(errors.items)
    threshold = (
        errors.integer(
            raw["failureThreshold"],
            child_path(path, "failureThreshold"),
            minimum=1,
            maximum=MAX_FAILURE_THRESHOLD,
        )
        if "failureThreshold" in raw
        else None
    )
    replicas = (
        _replicas(raw["replicas"], child_path(path, "replicas"), errors, 0, policy)
        if "replicas" in raw
        else None
    )
    behavior: str | None = "static"
    if "behavior" in raw:
        behavior = errors.choice(raw["behavior"], child_path(path, "behavior"), FALLBACK_BEHAVIORS)
    if len(errors.items) > n or threshold is None or replicas is None or behavior is None:
        return None
    return Fallback(failure_threshold=threshold, replicas=replicas, behavior=cast(FallbackBehavior, behavior))


def _prometheus(value: object, path: str, errors: ErrorList) -> PrometheusSource | None:
    raw = errors.mapping(value, path, PROMETHEUS_FIELDS)
    if raw is None:
        return None
    n = len(errors.items)

    def at(key: str) -> str:
        return child_path(path, key)

    workspace = (
        errors.string(
            raw["workspaceId"],
            at("workspaceId"),
            WORKSPACE_ID_RE,
            100,
            "an AMP workspace id such as ws-1234abcd-...",
        )
        if "workspaceId" in raw
        else None
    )
    region = (
        errors.string(raw["region"], at("region"), REGION_RE, 50, "an AWS region such as eu-west-1")
        if "region" in raw
        else None
    )
    url = (
        errors.string(raw["url"], at("url"), URL_RE, 2048, "http(s)://host[:port][/path]")
        if "url" in raw
        else None
    )
    sigv4 = errors.boolean(raw["sigv4"], at("sigv4")) if "sigv4" in raw else False
    if isinstance(url, str):
        # A password in the URL would be copied into every decision record and the state item,
        # and "?"/"#" would choose the query path: refuse both here, before anything logs it.
        authority = url.split("://", 1)[-1].split("/", 1)[0]
        if "@" in authority:
            errors.add(
                at("url"),
                "must not carry credentials (user:password@)",
                "ampscaler sends no basic auth: put the server behind the AMP workspace, or list an "
                "unauthenticated URL in the stack's ALLOWED_PROMETHEUS_URLS",
            )
        if "?" in url or "#" in url:
            errors.add(at("url"), "must not have a query string or fragment", "give the server's base URL")
    if "url" in raw and "workspaceId" in raw:
        errors.add(path, "set either url or workspaceId, not both", "url is for a self-managed Prometheus")
    elif "url" not in raw and "workspaceId" not in raw:
        errors.add(path, "must set url or workspaceId", "omit prometheus to use the stack's AMP workspace")
    if "sigv4" in raw and "url" not in raw:
        errors.add(at("sigv4"), "only applies with url", "AMP workspaces are always signed")
    if len(errors.items) > n or sigv4 is None:
        return None
    return PrometheusSource(workspace_id=workspace, region=region, url=url, sigv4=sigv4)


def load_rule_file(
    path: str | Path, *, default_cluster: str | None = None, policy: RulePolicy | None = None
) -> list[Rule]:
    """Parse every rule in a .json/.yaml/.yml file (a YAML file may hold several ``---`` documents).

    Raises
    ------
    RuleInvalidError
        With the errors of every invalid document; in multi-document files each error starts
        with ``document N:`` (1-based).
    """
    docs = read_rule_documents(path)
    rules: list[Rule] = []
    problems: list[str] = []
    for number, doc in enumerate(docs, start=1):
        errors = ErrorList()
        rule = build_rule(doc, errors, default_cluster=default_cluster, policy=policy)
        if errors or rule is None:
            prefix = f"document {number}: " if len(docs) > 1 else ""
            problems.extend(prefix + e for e in errors.items)
        else:
            rules.append(rule)
    if problems:
        raise RuleInvalidError(problems, name=str(path))
    return rules
