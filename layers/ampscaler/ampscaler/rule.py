"""The rule format: parse and validate raw JSON/YAML rule documents into the typed ``model.Rule``.

Every problem is reported at once, each as ``json.path: message (hint)``, the way KEDA's
``parseTypedConfig`` collects every bad parameter. Field names and limits follow the HPA's
autoscaling/v2 API (``pkg/apis/autoscaling/validation/validation.go``) and the behavior defaults
follow the API server (``pkg/apis/autoscaling/v2/defaults.go``). ``RULE_SCHEMA`` is the JSON Schema
of the raw document, published as ``docs/rule.schema.json``.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, cast

import yaml

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
    Rule,
    ScaleTargetRef,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    TargetType,
)
from ampscaler.quantity import parse_quantity

# Upstream: MaxStabilizationWindowSeconds / MaxPeriodSeconds in pkg/apis/autoscaling/validation.
MAX_STABILIZATION_WINDOW_SECONDS: Final = 3600
MAX_PERIOD_SECONDS: Final = 1800

METRIC_TYPES: Final[tuple[MetricType, ...]] = ("Pods", "Object", "External")
TARGET_TYPES: Final[tuple[TargetType, ...]] = ("Value", "AverageValue")
POLICY_TYPES: Final[tuple[PolicyType, ...]] = ("Pods", "Percent")
SELECT_POLICIES: Final[tuple[SelectPolicy, ...]] = ("Max", "Min", "Disabled")
FALLBACK_BEHAVIORS: Final[tuple[FallbackBehavior, ...]] = (
    "static",
    "currentReplicas",
    "currentReplicasIfHigher",
    "currentReplicasIfLower",
)
# Kinds whose group/version is known without the user spelling it out.
DEFAULT_API_VERSIONS: Final[Mapping[str, str]] = {"Deployment": "apps/v1", "StatefulSet": "apps/v1"}

# Upstream: defaultHPAScaleUpRules / defaultHPAScaleDownRules in pkg/apis/autoscaling/v2/defaults.go.
# Scale-down stabilization stays None: the controller's --horizontal-pod-autoscaler-downscale-
# stabilization flag fills it at evaluation time, so the API server cannot default it.
DEFAULT_SCALE_UP_RULES: Final = ScalingRules(
    stabilization_window_seconds=0,
    select_policy="Max",
    policies=(ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)),
)
DEFAULT_SCALE_DOWN_RULES: Final = ScalingRules(
    stabilization_window_seconds=None,
    select_policy="Max",
    policies=(ScalingPolicy("Percent", 100, 15),),
)

METRIC_NAME_RE: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]*$")
METRIC_NAME_MAX = 63
LABEL_NAME_RE: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DNS1123_LABEL_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
KIND_RE: Final = re.compile(r"^[A-Z][A-Za-z0-9]*$")
GROUP_VERSION_RE: Final = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?v[0-9]+((alpha|beta)[0-9]+)?$"
)
# EKS CreateCluster: name pattern and length.
CLUSTER_RE: Final = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]*$")
CLUSTER_MAX = 100
# SSM parameter names relative to the rule prefix.
RULE_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
WORKSPACE_ID_RE: Final = re.compile(r"^ws-[0-9a-zA-Z-]+$")
REGION_RE: Final = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
URL_RE: Final = re.compile(r"^https?://[^\s/]+(/\S*)?$")
ROOT_FIELDS: Final = (
    "apiVersion",
    "name",
    "target",
    "minReplicas",
    "maxReplicas",
    "metrics",
    "behavior",
    "tolerance",
    "fallback",
    "paused",
    "dryRun",
    "cooldownPeriodSeconds",
    "evaluationIntervalSeconds",
    "prometheus",
)
TARGET_REF_FIELDS: Final = ("cluster", "namespace", "kind", "name", "apiVersion")
METRIC_FIELDS: Final = ("name", "type", "query", "target", "podLabel", "activationThreshold", "emptyAs")
METRIC_TARGET_FIELDS: Final = ("type", "value", "averageValue")
BEHAVIOR_FIELDS: Final = ("scaleUp", "scaleDown")
SCALING_RULES_FIELDS: Final = ("stabilizationWindowSeconds", "selectPolicy", "policies", "tolerance")
POLICY_FIELDS: Final = ("type", "value", "periodSeconds")
FALLBACK_FIELDS: Final = ("failureThreshold", "replicas", "behavior")
PROMETHEUS_FIELDS: Final = ("workspaceId", "region", "url", "sigv4")

_MISSING: Final = object()


# --------------------------------------------------------------------------- error collection


def child_path(path: str, key: str) -> str:
    """``path.key``, or ``key`` at the root."""
    return f"{path}.{key}" if path else key


def index_path(path: str, index: int) -> str:
    """``path[index]``."""
    return f"{path}[{index}]"


def show(value: object) -> str:
    """A value as the user wrote it (JSON spelling), shortened for messages."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def json_type(value: object) -> str:
    """The JSON type name of a parsed value, for "must be X, got Y" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


class ErrorList:
    """Collects ``path: message (hint)`` strings; every check appends, nothing raises early."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str, hint: str | None = None) -> None:
        """Record one problem at ``path``."""
        where = path or "(document)"
        self.items.append(f"{where}: {message}" + (f" ({hint})" if hint else ""))

    def __bool__(self) -> bool:
        return bool(self.items)

    def mapping(
        self,
        value: object,
        path: str,
        allowed: Sequence[str],
        required: Sequence[str] = (),
        required_hints: Mapping[str, str] | None = None,
    ) -> Mapping[str, Any] | None:
        """Check ``value`` is an object with only ``allowed`` keys and every ``required`` key.

        Unknown keys are errors with a "did you mean" hint (a typo must never silently turn a
        setting off). Returns the mapping, or None when it is not an object at all.
        """
        if not isinstance(value, Mapping):
            self.add(path, f"must be an object, got {json_type(value)}")
            return None
        for key in value:
            if not isinstance(key, str):
                self.add(path, f"keys must be strings, got {show(key)}")
            elif key not in allowed:
                self.add(child_path(path, key), "unknown field", suggest(key, allowed))
        for key in required:
            if key not in value:
                hint = (required_hints or {}).get(key)
                self.add(child_path(path, key), "required", hint)
        return cast(Mapping[str, Any], value)

    def integer(
        self, value: object, path: str, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        """An integer within [minimum, maximum]; integral floats (3.0) count, as in JSON Schema."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(path, f"must be an integer, got {show(value)}", _string_number_hint(value))
            return None
        if isinstance(value, float) and not value.is_integer():
            self.add(path, f"must be an integer, got {show(value)}")
            return None
        number = int(value)
        if minimum is not None and number < minimum:
            self.add(path, _range_message(minimum, maximum, value))
            return None
        if maximum is not None and number > maximum:
            self.add(path, _range_message(minimum, maximum, value))
            return None
        return number

    def number(
        self,
        value: object,
        path: str,
        *,
        positive: bool = False,
        minimum: float | None = None,
        below: float | None = None,
    ) -> float | None:
        """A finite number; ``positive`` means > 0, ``minimum`` is inclusive, ``below`` exclusive."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            kind = "a positive number" if positive else "a number"
            self.add(path, f"must be {kind}, got {show(value)}", _string_number_hint(value))
            return None
        if positive and value <= 0:
            self.add(path, f"must be a positive number, got {show(value)}")
            return None
        if minimum is not None and value < minimum:
            if below is not None:
                self.add(path, f"must be >= {minimum:g} and < {below:g}, got {show(value)}")
            else:
                self.add(path, f"must be >= {minimum:g}, got {show(value)}")
            return None
        if below is not None and value >= below:
            self.add(path, f"must be >= {minimum or 0:g} and < {below:g}, got {show(value)}")
            return None
        return float(value)

    def string(
        self,
        value: object,
        path: str,
        pattern: re.Pattern[str] | None = None,
        max_length: int | None = None,
        hint: str | None = None,
    ) -> str | None:
        """A non-empty string, optionally matching ``pattern`` and at most ``max_length`` long."""
        if not isinstance(value, str):
            self.add(path, f"must be a string, got {json_type(value)}")
            return None
        if not value.strip():
            self.add(path, "must not be empty", hint)
            return None
        if max_length is not None and len(value) > max_length:
            self.add(path, f"must be at most {max_length} characters, got {len(value)}")
            return None
        if pattern is not None and not pattern.match(value):
            self.add(path, f"invalid value {show(value)}", hint)
            return None
        return value

    def boolean(self, value: object, path: str) -> bool | None:
        """true or false (not "true", not 1)."""
        if not isinstance(value, bool):
            self.add(path, f"must be true or false, got {show(value)}")
            return None
        return value

    def choice(self, value: object, path: str, choices: Sequence[str]) -> str | None:
        """One of ``choices`` exactly (case-sensitive, as the API server)."""
        if isinstance(value, str) and value in choices:
            return value
        hint = suggest(value, choices) if isinstance(value, str) else None
        # The message already lists the choices; only a "did you mean" adds anything.
        if hint is not None and not hint.startswith("did you mean"):
            hint = None
        self.add(path, f"must be one of {', '.join(choices)}, got {show(value)}", hint)
        return None


def suggest(word: str, candidates: Iterable[str]) -> str:
    """A "did you mean" hint for ``word`` among ``candidates`` (case-insensitive), or the full list."""
    options = list(candidates)
    lowered = {c.lower().replace("_", "").replace("-", ""): c for c in options}
    key = word.lower().replace("_", "").replace("-", "")
    if key in lowered:
        return f'did you mean "{lowered[key]}"?'
    close = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.6)
    if close:
        return f'did you mean "{lowered[close[0]]}"?'
    return "expected one of: " + ", ".join(options)


def _range_message(minimum: int | None, maximum: int | None, value: object) -> str:
    if minimum is not None and maximum is not None:
        return f"must be between {minimum} and {maximum}, got {show(value)}"
    if minimum is not None:
        return f"must be >= {minimum}, got {show(value)}"
    return f"must be <= {maximum}, got {show(value)}"


def _string_number_hint(value: object) -> str | None:
    """Hint for numbers written as strings, including Kubernetes quantities such as "500m"."""
    if not isinstance(value, str):
        return None
    try:
        number = parse_quantity(value)
    except ValueError:
        return None
    return f"write a plain JSON number without quotes: {number:g}"


# --------------------------------------------------------------------------- parsing


def parse_rule(
    doc: Mapping[str, Any] | str,
    name: str | None = None,
    *,
    default_cluster: str | None = None,
) -> Rule:
    """Parse and validate one rule document into a ``Rule`` with every default filled in.

    Parameters
    ----------
    doc
        The rule as a mapping, or as JSON or YAML text (YAML through ``yaml.safe_load``).
    name
        The rule's name, normally the SSM parameter path relative to the rule prefix. Overrides
        the document's ``name``; without either the name is ``<cluster>/<namespace>/<target>``.
    default_cluster
        Cluster for a target that omits ``cluster`` (the stack's ``CLUSTER_NAME``). Without it,
        ``target.cluster`` is required.

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
    rule = build_rule(doc, errors, name=name, default_cluster=default_cluster)
    if errors or rule is None:
        doc_name = doc.get("name") if isinstance(doc, Mapping) else None
        raise RuleInvalidError(errors.items, name=name or (doc_name if isinstance(doc_name, str) else None))
    return rule


def load_rule_text(text: str, name: str | None = None) -> Any:
    """Decode one JSON or YAML document; RuleInvalidError on a syntax error or several documents."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            json_error = f"(document): invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        # JSON-looking text may still be valid YAML flow style; only report JSON if YAML fails too.
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            raise RuleInvalidError([json_error], name=name) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleInvalidError([f"(document): invalid YAML: {_yaml_message(exc)}"], name=name) from exc


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"line {mark.line + 1} column {mark.column + 1}: {problem}"
    return str(problem)


def build_rule(
    doc: object,
    errors: ErrorList,
    *,
    path: str = "",
    name: str | None = None,
    default_cluster: str | None = None,
) -> Rule | None:
    """Validate ``doc`` into a Rule, appending every problem to ``errors`` (paths under ``path``).

    The building block of ``parse_rule`` for callers that validate a larger document (the decide
    contract prefixes rule errors with ``rule.``). Returns None when anything is wrong.
    """
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

    target = _target(raw["target"], p("target"), errors, default_cluster) if "target" in raw else None

    min_replicas: int | None = 1  # Upstream: SetDefaults_HorizontalPodAutoscaler sets minReplicas 1.
    if "minReplicas" in raw:
        min_replicas = errors.integer(raw["minReplicas"], p("minReplicas"), minimum=0)
    max_replicas = (
        errors.integer(raw["maxReplicas"], p("maxReplicas"), minimum=1) if "maxReplicas" in raw else None
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

    behavior = _behavior(raw["behavior"], p("behavior"), errors) if "behavior" in raw else None
    tolerance = None
    if "tolerance" in raw:
        tolerance = errors.number(raw["tolerance"], p("tolerance"), minimum=0.0, below=1.0)
    fallback = _fallback(raw["fallback"], p("fallback"), errors) if "fallback" in raw else None
    paused = errors.boolean(raw["paused"], p("paused")) if "paused" in raw else False
    dry_run = errors.boolean(raw["dryRun"], p("dryRun")) if "dryRun" in raw else False
    cooldown: int | None = DEFAULT_COOLDOWN_PERIOD_SECONDS
    if "cooldownPeriodSeconds" in raw:
        cooldown = errors.integer(raw["cooldownPeriodSeconds"], p("cooldownPeriodSeconds"), minimum=0)
    interval = None
    if "evaluationIntervalSeconds" in raw:
        interval = errors.integer(raw["evaluationIntervalSeconds"], p("evaluationIntervalSeconds"), minimum=1)
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


def _target(
    value: object, path: str, errors: ErrorList, default_cluster: str | None
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
        # Checked on the raw name so a duplicate is reported even when the metric has other errors.
        raw_name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(raw_name, str):
            continue
        if raw_name in seen:
            errors.add(
                child_path(index_path(path, i), "name"),
                f"duplicate metric name {show(raw_name)}",
                f"already used by {index_path(path, seen[raw_name])}",
            )
        else:
            seen[raw_name] = i
    return tuple(specs) if len(errors.items) == n else None


def _metric(value: object, path: str, errors: ErrorList) -> MetricSpec | None:
    raw = errors.mapping(
        value,
        path,
        METRIC_FIELDS,
        required=("name", "type", "query", "target"),
        required_hints={"type": "Pods, Object or External", "query": "the PromQL expression"},
    )
    if raw is None:
        return None
    n = len(errors.items)

    def at(key: str) -> str:
        return child_path(path, key)

    name = (
        errors.string(
            raw["name"],
            at("name"),
            METRIC_NAME_RE,
            METRIC_NAME_MAX,
            "a letter, then letters, digits, '_' or '-'",
        )
        if "name" in raw
        else None
    )
    metric_type = (
        cast(MetricType | None, errors.choice(raw["type"], at("type"), METRIC_TYPES))
        if "type" in raw
        else None
    )
    if metric_type is None and "type" in raw and raw["type"] == "Resource":
        errors.items[-1] += (
            " (CPU/memory Resource metrics are out of scope: query them from Prometheus instead)"
        )
    query = errors.string(raw["query"], at("query"), hint="a PromQL expression") if "query" in raw else None
    target = _metric_target(raw["target"], at("target"), errors, metric_type) if "target" in raw else None
    pod_label = DEFAULT_POD_LABEL
    if "podLabel" in raw:
        if metric_type is not None and metric_type != "Pods":
            errors.add(at("podLabel"), f"only applies to Pods metrics, not {metric_type}", "remove it")
        else:
            pod_label = (
                errors.string(raw["podLabel"], at("podLabel"), LABEL_NAME_RE, hint="a Prometheus label name")
                or ""
            )
    activation = 0.0
    if "activationThreshold" in raw:
        activation = errors.number(raw["activationThreshold"], at("activationThreshold"), minimum=0.0) or 0.0
    empty_as = errors.number(raw["emptyAs"], at("emptyAs")) if "emptyAs" in raw else None
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
    if target_type == "Value" and metric_type == "Pods":
        # Upstream: validatePodsSource requires target.averageValue.
        errors.add(
            child_path(path, "type"), "must be AverageValue for a Pods metric", 'use "type": "AverageValue"'
        )
    amounts: dict[str, float | None] = {}
    for key in ("value", "averageValue"):
        if key in raw:
            amounts[key] = errors.number(raw[key], child_path(path, key), positive=True)
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


def _behavior(value: object, path: str, errors: ErrorList) -> Behavior | None:
    raw = errors.mapping(value, path, BEHAVIOR_FIELDS)
    if raw is None:
        return None
    n = len(errors.items)
    # Upstream: SetDefaults_HorizontalPodAutoscalerBehavior -> GenerateHPAScale{Up,Down}Rules:
    # an absent direction gets its full defaults; a present one overrides field by field.
    up = _scaling_rules(
        raw.get("scaleUp", _MISSING), child_path(path, "scaleUp"), errors, DEFAULT_SCALE_UP_RULES
    )
    down = _scaling_rules(
        raw.get("scaleDown", _MISSING), child_path(path, "scaleDown"), errors, DEFAULT_SCALE_DOWN_RULES
    )
    if len(errors.items) > n or up is None or down is None:
        return None
    return Behavior(scale_up=up, scale_down=down)


def _scaling_rules(
    value: object, path: str, errors: ErrorList, defaults: ScalingRules
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
        policies = _policies(raw["policies"], child_path(path, "policies"), errors)
    tolerance = defaults.tolerance
    if "tolerance" in raw:
        tolerance = errors.number(raw["tolerance"], child_path(path, "tolerance"), minimum=0.0)
    if len(errors.items) > n or policies is None:
        return None
    return ScalingRules(
        stabilization_window_seconds=window, select_policy=select, policies=policies, tolerance=tolerance
    )


def _policies(value: object, path: str, errors: ErrorList) -> tuple[ScalingPolicy, ...] | None:
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
        amount = errors.integer(raw["value"], child_path(at, "value"), minimum=1) if "value" in raw else None
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


def _fallback(value: object, path: str, errors: ErrorList) -> Fallback | None:
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
        errors.integer(raw["failureThreshold"], child_path(path, "failureThreshold"), minimum=1)
        if "failureThreshold" in raw
        else None
    )
    replicas = (
        errors.integer(raw["replicas"], child_path(path, "replicas"), minimum=0)
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
    if "url" in raw and "workspaceId" in raw:
        errors.add(path, "set either url or workspaceId, not both", "url is for a self-managed Prometheus")
    elif "url" not in raw and "workspaceId" not in raw:
        errors.add(path, "must set url or workspaceId", "omit prometheus to use the stack's AMP workspace")
    if "sigv4" in raw and "url" not in raw:
        errors.add(at("sigv4"), "only applies with url", "AMP workspaces are always signed")
    if len(errors.items) > n or sigv4 is None:
        return None
    return PrometheusSource(workspace_id=workspace, region=region, url=url, sigv4=sigv4)


# --------------------------------------------------------------------------- serialising and files


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
        metrics.append(metric)
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


RULE_FILE_SUFFIXES: Final = (".json", ".yaml", ".yml")


def read_rule_documents(path: str | Path) -> list[Any]:
    """The raw documents in a rule file: one for .json, every non-empty document for .yaml/.yml.

    Raises
    ------
    RuleInvalidError
        When the suffix is unknown or the file does not decode (the message names the file).
    OSError
        When the file cannot be read.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in RULE_FILE_SUFFIXES:
        raise RuleInvalidError(
            [f"(file): unsupported suffix {suffix!r} (use .json, .yaml or .yml)"], name=str(file)
        )
    text = file.read_text(encoding="utf-8")
    if suffix == ".json":
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            raise RuleInvalidError(
                [f"(document): invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"],
                name=str(file),
            ) from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise RuleInvalidError([f"(document): invalid YAML: {_yaml_message(exc)}"], name=str(file)) from exc
    if not docs:
        raise RuleInvalidError(["(document): the file holds no rule"], name=str(file))
    return docs


def load_rule_file(path: str | Path, *, default_cluster: str | None = None) -> list[Rule]:
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
        rule = build_rule(doc, errors, default_cluster=default_cluster)
        if errors or rule is None:
            prefix = f"document {number}: " if len(docs) > 1 else ""
            problems.extend(prefix + e for e in errors.items)
        else:
            rules.append(rule)
    if problems:
        raise RuleInvalidError(problems, name=str(path))
    return rules


# --------------------------------------------------------------------------- semantic lint

_BY_RE: Final = re.compile(r"\bby\s*\(([^)]*)\)")
_WITHOUT_RE: Final = re.compile(r"\bwithout\s*\(([^)]*)\)")
_PAIRS: Final = {")": "(", "]": "[", "}": "{"}


def check_promql_structure(query: str) -> list[str]:
    """A light structural check of PromQL: balanced (), [], {} and closed string quotes.

    Not a parser: a query that passes may still be rejected by Prometheus; one that fails here
    certainly will be.
    """
    problems: list[str] = []
    stack: list[tuple[str, int]] = []
    i = 0
    while i < len(query):
        ch = query[i]
        if ch in "\"'`":
            end = i + 1
            while end < len(query) and query[end] != ch:
                end += 2 if query[end] == "\\" and ch != "`" else 1
            if end >= len(query):
                problems.append(f"unterminated {ch} string starting at column {i + 1}")
                return problems
            i = end + 1
            continue
        if ch == "#":
            # PromQL comment to end of line.
            newline = query.find("\n", i)
            i = len(query) if newline < 0 else newline
            continue
        if ch in "([{":
            stack.append((ch, i))
        elif ch in ")]}":
            if not stack or stack[-1][0] != _PAIRS[ch]:
                problems.append(f"unexpected {ch!r} at column {i + 1}")
                return problems
            stack.pop()
        i += 1
    for opener, position in stack:
        problems.append(f"unclosed {opener!r} from column {position + 1}")
    return problems


def _groups_by_pod(query: str, pod_label: str) -> bool:
    """True when the query keeps ``pod_label`` on its result series as far as grouping goes."""
    for match in _BY_RE.finditer(query):
        if pod_label in [x.strip() for x in match.group(1).split(",")]:
            return True
    withouts = _WITHOUT_RE.findall(query)
    return bool(withouts) and all(pod_label not in [x.strip() for x in w.split(",")] for w in withouts)


def lint_rule(rule: Rule, path: str = "") -> tuple[list[str], list[str]]:
    """Semantic checks beyond the format: (errors, warnings), each ``json.path: message (hint)``.

    Errors: malformed PromQL structure; a Pods query that does not group by its pod label (an
    aggregation without ``by (pod)`` collapses the per-pod series the Pods type needs).
    Warnings: settings that are valid but have no effect or rarely do what was meant.
    """
    errors = ErrorList()
    warnings = ErrorList()

    def at(key: str) -> str:
        return child_path(path, key)

    for i, spec in enumerate(rule.metrics):
        metric_path = index_path(at("metrics"), i)
        for problem in check_promql_structure(spec.query):
            errors.add(child_path(metric_path, "query"), problem)
        if spec.type == "Pods" and not _groups_by_pod(spec.query, spec.pod_label):
            errors.add(
                child_path(metric_path, "query"),
                f"a Pods query must return one series per pod, grouped by the {spec.pod_label!r} label",
                f"aggregate with sum by ({spec.pod_label}) (...)",
            )
        if rule.min_replicas > 0 and spec.activation_threshold > 0:
            warnings.add(
                child_path(metric_path, "activationThreshold"),
                "only matters when minReplicas is 0",
            )
    if rule.min_replicas > 0 and rule.cooldown_period_seconds != DEFAULT_COOLDOWN_PERIOD_SECONDS:
        warnings.add(at("cooldownPeriodSeconds"), "only matters when minReplicas is 0")
    if rule.behavior is not None:
        up, down = rule.behavior.scale_up, rule.behavior.scale_down
        if up.select_policy == "Disabled":
            warnings.add(at("behavior.scaleUp.selectPolicy"), "Disabled: this rule never scales up")
        if down.select_policy == "Disabled":
            warnings.add(at("behavior.scaleDown.selectPolicy"), "Disabled: this rule never scales down")
        down_window = down.stabilization_window_seconds
        if (
            up.stabilization_window_seconds
            and down_window is not None
            and up.stabilization_window_seconds > down_window
        ):
            warnings.add(
                at("behavior.scaleUp.stabilizationWindowSeconds"),
                f"longer than the scale-down window ({down_window}s)",
                "the rule would react faster to falling load than to rising load",
            )
    if rule.fallback is not None and rule.fallback.behavior == "static":
        replicas = rule.fallback.replicas
        if not rule.min_replicas <= replicas <= rule.max_replicas:
            warnings.add(
                at("fallback.replicas"),
                f"{replicas} is outside minReplicas..maxReplicas ({rule.min_replicas}..{rule.max_replicas})",
            )
    return errors.items, warnings.items


# --------------------------------------------------------------------------- JSON Schema


def _schema_rules() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "stabilizationWindowSeconds": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_STABILIZATION_WINDOW_SECONDS,
            },
            "selectPolicy": {"enum": list(SELECT_POLICIES)},
            "policies": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": list(POLICY_FIELDS),
                    "properties": {
                        "type": {"enum": list(POLICY_TYPES)},
                        "value": {"type": "integer", "minimum": 1},
                        "periodSeconds": {"type": "integer", "minimum": 1, "maximum": MAX_PERIOD_SECONDS},
                    },
                },
            },
            "tolerance": {"type": "number", "minimum": 0},
        },
    }


def rule_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a raw rule document, as published in ``docs/rule.schema.json``.

    Checks that a schema cannot express (maxReplicas >= minReplicas, unique metric names, apiVersion
    required for kinds other than Deployment/StatefulSet) are left to ``parse_rule``.
    """
    positive = {"type": "number", "exclusiveMinimum": 0}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:ampscaler:rule:v1",
        "title": "ampscaler rule (apiVersion ampscaler/v1)",
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "target", "maxReplicas", "metrics"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "name": {"type": "string", "pattern": RULE_NAME_RE.pattern, "maxLength": 1011},
            "target": {
                "type": "object",
                "additionalProperties": False,
                "required": ["namespace", "kind", "name"],
                "properties": {
                    "cluster": {"type": "string", "pattern": CLUSTER_RE.pattern, "maxLength": CLUSTER_MAX},
                    "namespace": {"type": "string", "pattern": DNS1123_LABEL_RE.pattern, "maxLength": 63},
                    "kind": {"type": "string", "pattern": KIND_RE.pattern, "maxLength": 63},
                    "name": {"type": "string", "pattern": DNS1123_SUBDOMAIN_RE.pattern, "maxLength": 253},
                    "apiVersion": {"type": "string", "pattern": GROUP_VERSION_RE.pattern, "maxLength": 253},
                },
            },
            "minReplicas": {"type": "integer", "minimum": 0, "default": 1},
            "maxReplicas": {"type": "integer", "minimum": 1},
            "metrics": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "type", "query", "target"],
                    "properties": {
                        "name": {
                            "type": "string",
                            "pattern": METRIC_NAME_RE.pattern,
                            "maxLength": METRIC_NAME_MAX,
                        },
                        "type": {"enum": list(METRIC_TYPES)},
                        "query": {"type": "string", "pattern": r"\S"},
                        "target": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["type"],
                            "properties": {
                                "type": {"enum": list(TARGET_TYPES)},
                                "value": positive,
                                "averageValue": positive,
                            },
                            "oneOf": [
                                {
                                    "properties": {"type": {"const": "Value"}},
                                    "required": ["value"],
                                    "not": {"required": ["averageValue"]},
                                },
                                {
                                    "properties": {"type": {"const": "AverageValue"}},
                                    "required": ["averageValue"],
                                    "not": {"required": ["value"]},
                                },
                            ],
                        },
                        "podLabel": {
                            "type": "string",
                            "pattern": LABEL_NAME_RE.pattern,
                            "default": DEFAULT_POD_LABEL,
                        },
                        "activationThreshold": {"type": "number", "minimum": 0, "default": 0},
                        "emptyAs": {"type": "number"},
                    },
                    "if": {"properties": {"type": {"const": "Pods"}}, "required": ["type"]},
                    "then": {"properties": {"target": {"properties": {"type": {"const": "AverageValue"}}}}},
                    "else": {"not": {"required": ["podLabel"]}},
                },
            },
            "behavior": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"scaleUp": _schema_rules(), "scaleDown": _schema_rules()},
            },
            "tolerance": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "fallback": {
                "type": "object",
                "additionalProperties": False,
                "required": ["failureThreshold", "replicas"],
                "properties": {
                    "failureThreshold": {"type": "integer", "minimum": 1},
                    "replicas": {"type": "integer", "minimum": 0},
                    "behavior": {"enum": list(FALLBACK_BEHAVIORS), "default": "static"},
                },
            },
            "paused": {"type": "boolean", "default": False},
            "dryRun": {"type": "boolean", "default": False},
            "cooldownPeriodSeconds": {
                "type": "integer",
                "minimum": 0,
                "default": DEFAULT_COOLDOWN_PERIOD_SECONDS,
            },
            "evaluationIntervalSeconds": {"type": "integer", "minimum": 1},
            "prometheus": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "workspaceId": {"type": "string", "pattern": WORKSPACE_ID_RE.pattern, "maxLength": 100},
                    "region": {"type": "string", "pattern": REGION_RE.pattern, "maxLength": 50},
                    "url": {"type": "string", "pattern": URL_RE.pattern, "maxLength": 2048},
                    "sigv4": {"type": "boolean", "default": False},
                },
                "oneOf": [{"required": ["url"]}, {"required": ["workspaceId"]}],
                "dependentRequired": {"sigv4": ["url"]},
            },
        },
        "allOf": [
            {
                # Upstream validateMetrics: scale to zero needs an Object or External metric.
                "if": {"properties": {"minReplicas": {"const": 0}}, "required": ["minReplicas"]},
                "then": {
                    "properties": {
                        "metrics": {"contains": {"properties": {"type": {"enum": ["Object", "External"]}}}}
                    }
                },
            }
        ],
    }


RULE_SCHEMA: Final = rule_schema()
