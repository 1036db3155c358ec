"""The JSON Schema of a raw rule document, built from the same limits as the parser."""

from __future__ import annotations

from typing import Any, Final

from ampscaler.model import (
    API_VERSION,
    DEFAULT_COOLDOWN_PERIOD_SECONDS,
    DEFAULT_POD_LABEL,
)
from ampscaler.policy import MAX_INT32
from ampscaler.quantity import QUANTITY_RE
from ampscaler.rule.limits import (
    CLUSTER_MAX,
    CLUSTER_RE,
    DNS1123_LABEL_RE,
    DNS1123_SUBDOMAIN_RE,
    FALLBACK_BEHAVIORS,
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
    METRIC_NAME_MAX,
    METRIC_NAME_RE,
    METRIC_TYPES,
    MIN_TARGET,
    POLICY_FIELDS,
    POLICY_TYPES,
    QUERY_METRIC_TYPES,
    REGION_RE,
    RESOURCE_NAMES,
    RESOURCE_TARGET_TYPES,
    RULE_NAME_RE,
    SELECT_POLICIES,
    SERIES_NAME_RE,
    TARGET_TYPES,
    URL_RE,
    WORKSPACE_ID_RE,
)


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
                        # Pods policies are further bounded by the operator's MAX_REPLICAS_CEILING.
                        "value": {"type": "integer", "minimum": 1, "maximum": MAX_PERCENT},
                        "periodSeconds": {"type": "integer", "minimum": 1, "maximum": MAX_PERIOD_SECONDS},
                    },
                },
            },
            "tolerance": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        },
    }


def _schema_resource_source(with_container: bool) -> dict[str, Any]:
    """Upstream ResourceMetricSource / ContainerResourceMetricSource with a Utilization or AverageValue target."""
    # A positive number, or a Kubernetes quantity string (the parser also checks the range).
    quantity = {
        "oneOf": [
            {"type": "number", "minimum": MIN_TARGET, "maximum": MAX_NUMBER},
            {"type": "string", "pattern": QUANTITY_RE.pattern},
        ]
    }
    properties: dict[str, Any] = {"name": {"enum": list(RESOURCE_NAMES)}}
    if with_container:
        properties["container"] = {"type": "string", "pattern": DNS1123_LABEL_RE.pattern, "maxLength": 63}
    properties["target"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["type"],
        "properties": {
            "type": {"enum": list(RESOURCE_TARGET_TYPES)},
            "averageUtilization": {"type": "integer", "minimum": 1, "maximum": MAX_INT32},
            "averageValue": quantity,
        },
        "oneOf": [
            {
                "properties": {"type": {"const": "Utilization"}},
                "required": ["averageUtilization"],
                "not": {"required": ["averageValue"]},
            },
            {
                "properties": {"type": {"const": "AverageValue"}},
                "required": ["averageValue"],
                "not": {"required": ["averageUtilization"]},
            },
        ],
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "container", "target"] if with_container else ["name", "target"],
        "properties": properties,
    }


def _schema_metric() -> dict[str, Any]:
    target = {"type": "number", "minimum": MIN_TARGET, "maximum": MAX_NUMBER}
    label = {"type": "string", "pattern": LABEL_NAME_RE.pattern, "maxLength": 200}
    query_only = ["target", "podLabel", "activationThreshold", "emptyAs"]
    resource_only = ["resource", "containerResource", "series"]

    def forbid(*names: str) -> dict[str, Any]:
        return {"not": {"anyOf": [{"required": [name]} for name in names]}}

    def when(types: list[str], then: dict[str, Any]) -> dict[str, Any]:
        return {"if": {"properties": {"type": {"enum": types}}, "required": ["type"]}, "then": then}

    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["type"],
        "properties": {
            "name": {"type": "string", "pattern": METRIC_NAME_RE.pattern, "maxLength": METRIC_NAME_MAX},
            "type": {"enum": list(METRIC_TYPES)},
            "query": {"type": "string", "pattern": r"\S"},
            "target": {
                "type": "object",
                "additionalProperties": False,
                "required": ["type"],
                "properties": {"type": {"enum": list(TARGET_TYPES)}, "value": target, "averageValue": target},
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
            "podLabel": {"type": "string", "pattern": LABEL_NAME_RE.pattern, "default": DEFAULT_POD_LABEL},
            "activationThreshold": {"type": "number", "minimum": 0, "maximum": MAX_NUMBER, "default": 0},
            "emptyAs": {"type": "number", "minimum": -MAX_NUMBER, "maximum": MAX_NUMBER},
            "resource": _schema_resource_source(False),
            "containerResource": _schema_resource_source(True),
            "series": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "metric": {"type": "string", "pattern": SERIES_NAME_RE.pattern, "maxLength": 200},
                    "namespaceLabel": label,
                    "podLabel": label,
                    "containerLabel": label,
                    # cpu only (the parser rejects it on a memory metric).
                    "windowSeconds": {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW_SECONDS},
                },
            },
        },
        "allOf": [
            when(
                list(QUERY_METRIC_TYPES),
                {"required": ["name", "query", "target"], **forbid(*resource_only)},
            ),
            when(["Resource"], {"required": ["resource"], **forbid("containerResource", *query_only)}),
            when(
                ["ContainerResource"], {"required": ["containerResource"], **forbid("resource", *query_only)}
            ),
            {
                "if": {"properties": {"type": {"const": "Pods"}}, "required": ["type"]},
                "then": {"properties": {"target": {"properties": {"type": {"const": "AverageValue"}}}}},
                "else": {"not": {"required": ["podLabel"]}},
            },
        ],
    }


def rule_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a raw rule document, as published in ``docs/rule.schema.json``.

    Checks that a schema cannot express (maxReplicas >= minReplicas, unique metric names, apiVersion
    required for kinds other than Deployment/StatefulSet, the operator's policy: allowed
    namespaces/clusters and ``MAX_REPLICAS_CEILING``, which the schema gives as its hard upper bound
    2**31-1) are left to ``parse_rule``.
    """
    replicas = {"type": "integer", "minimum": 0, "maximum": MAX_INT32}
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
            "minReplicas": {**replicas, "default": 1},
            "maxReplicas": {**replicas, "minimum": 1},
            "metrics": {"type": "array", "minItems": 1, "items": _schema_metric()},
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
                    "failureThreshold": {"type": "integer", "minimum": 1, "maximum": MAX_FAILURE_THRESHOLD},
                    "replicas": replicas,
                    "behavior": {"enum": list(FALLBACK_BEHAVIORS), "default": "static"},
                },
            },
            "paused": {"type": "boolean", "default": False},
            "dryRun": {"type": "boolean", "default": False},
            "cooldownPeriodSeconds": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_COOLDOWN_PERIOD_SECONDS,
                "default": DEFAULT_COOLDOWN_PERIOD_SECONDS,
            },
            "evaluationIntervalSeconds": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_EVALUATION_INTERVAL_SECONDS,
            },
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
