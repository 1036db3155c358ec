"""Limits, names and defaults of the rule format: the one place both the parser and the schema read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from ampscaler.model import (
    FallbackBehavior,
    MetricType,
    PolicyType,
    ResourceName,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    TargetType,
)
from ampscaler.policy import RulePolicy

# Upstream: MaxStabilizationWindowSeconds / MaxPeriodSeconds in pkg/apis/autoscaling/validation.
MAX_STABILIZATION_WINDOW_SECONDS: Final = 3600
MAX_PERIOD_SECONDS: Final = 1800
# Numbers the engine computes with stay far from float overflow and from a zero milli-value:
# a target below MIN_TARGET rounds to 0 milli (division by zero), values near 1.8e308 overflow
# when scaled to milli-units.
MIN_TARGET: Final = 1e-6
MAX_NUMBER: Final = 1e15
MAX_COOLDOWN_PERIOD_SECONDS: Final = 7 * 24 * 3600
MAX_EVALUATION_INTERVAL_SECONDS: Final = 3600
MAX_FAILURE_THRESHOLD: Final = 10_000
# A Percent policy may at most multiply the replicas by 101 per period.
MAX_PERCENT: Final = 10_000
DEFAULT_POLICY: Final = RulePolicy()

METRIC_TYPES: Final[tuple[MetricType, ...]] = ("Pods", "Object", "External", "Resource", "ContainerResource")
# The metric types read through a PromQL query the rule spells out (``target`` at the metric's top level).
QUERY_METRIC_TYPES: Final[tuple[MetricType, ...]] = ("Pods", "Object", "External")
# The HPA's compute-resource types: target under ``resource``/``containerResource``, default query.
RESOURCE_METRIC_TYPES: Final[tuple[MetricType, ...]] = ("Resource", "ContainerResource")
TARGET_TYPES: Final[tuple[TargetType, ...]] = ("Value", "AverageValue")
# Upstream: the controller reads averageUtilization or averageValue of a Resource target, never value.
RESOURCE_TARGET_TYPES: Final[tuple[TargetType, ...]] = ("Utilization", "AverageValue")
RESOURCE_NAMES: Final[tuple[ResourceName, ...]] = ("cpu", "memory")
# A rate window longer than an hour would hide every change the scaler could react to.
MAX_WINDOW_SECONDS: Final = 3600
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
# Prometheus metric (series) names: label-name characters plus ':' (recording rules).
SERIES_NAME_RE: Final = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
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
METRIC_FIELDS: Final = (
    "name",
    "type",
    "query",
    "target",
    "podLabel",
    "activationThreshold",
    "emptyAs",
    "resource",
    "containerResource",
    "series",
)
METRIC_TARGET_FIELDS: Final = ("type", "value", "averageValue")
RESOURCE_SOURCE_FIELDS: Final = ("name", "target")
CONTAINER_RESOURCE_SOURCE_FIELDS: Final = ("name", "container", "target")
RESOURCE_TARGET_FIELDS: Final = ("type", "averageUtilization", "averageValue")
# Per-rule overrides of where a Resource metric's usage lives (model.ResourceSeries); ``metric``
# is the CPU counter for a cpu metric and the memory gauge for a memory metric.
SERIES_FIELDS: Final = ("metric", "namespaceLabel", "podLabel", "containerLabel", "windowSeconds")
BEHAVIOR_FIELDS: Final = ("scaleUp", "scaleDown")
SCALING_RULES_FIELDS: Final = ("stabilizationWindowSeconds", "selectPolicy", "policies", "tolerance")
POLICY_FIELDS: Final = ("type", "value", "periodSeconds")
FALLBACK_FIELDS: Final = ("failureThreshold", "replicas", "behavior")
PROMETHEUS_FIELDS: Final = ("workspaceId", "region", "url", "sigv4")
