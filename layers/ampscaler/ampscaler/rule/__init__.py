"""The rule format: parse and validate raw JSON/YAML rule documents into the typed ``model.Rule``.

Every problem is reported at once, each as ``json.path: message (hint)``, the way KEDA's
``parseTypedConfig`` collects every bad parameter. Field names and limits follow the HPA's
autoscaling/v2 API (``pkg/apis/autoscaling/validation/validation.go``) and the behavior defaults
follow the API server (``pkg/apis/autoscaling/v2/defaults.go``).

One module per responsibility; this package re-exports the public names, so callers import from
``ampscaler.rule``:

``limits``
    Ranges, names, patterns and defaults: the single source both the parser and the schema read.
``messages``
    ``ErrorList``, JSON paths and bounded rendering of values in messages.
``read``
    Rule text and files decoded under the shared policy of ``ampscaler.documents``.
``parse``
    ``parse_rule``/``build_rule``/``load_rule_file``: raw document to ``Rule``.
``serialise``
    ``rule_to_document``: ``Rule`` back to a raw document with every default written out.
``lint``
    PromQL structure, Pods grouping and settings that have no effect.
``schema``
    ``RULE_SCHEMA``, published as ``docs/rule.schema.json`` (a test keeps the two equal).
"""

from __future__ import annotations

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
    QUERY_METRIC_TYPES,
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
from ampscaler.rule.lint import check_promql_structure, lint_document, lint_rule
from ampscaler.rule.messages import (
    MAX_PATH_CHARS,
    SHOW_LIMIT,
    ErrorList,
    child_path,
    index_path,
    json_type,
    show,
    suggest,
)
from ampscaler.rule.parse import build_rule, default_metric_name, load_rule_file, parse_rule
from ampscaler.rule.read import RULE_FILE_SUFFIXES, load_rule_text, read_rule_documents
from ampscaler.rule.schema import RULE_SCHEMA, rule_schema
from ampscaler.rule.serialise import rule_to_document

__all__ = [
    "BEHAVIOR_FIELDS",
    "CLUSTER_MAX",
    "CLUSTER_RE",
    "CONTAINER_RESOURCE_SOURCE_FIELDS",
    "DEFAULT_API_VERSIONS",
    "DEFAULT_POLICY",
    "DEFAULT_SCALE_DOWN_RULES",
    "DEFAULT_SCALE_UP_RULES",
    "DNS1123_LABEL_RE",
    "DNS1123_SUBDOMAIN_RE",
    "FALLBACK_BEHAVIORS",
    "FALLBACK_FIELDS",
    "GROUP_VERSION_RE",
    "KIND_RE",
    "LABEL_NAME_RE",
    "MAX_COOLDOWN_PERIOD_SECONDS",
    "MAX_EVALUATION_INTERVAL_SECONDS",
    "MAX_FAILURE_THRESHOLD",
    "MAX_NUMBER",
    "MAX_PATH_CHARS",
    "MAX_PERCENT",
    "MAX_PERIOD_SECONDS",
    "MAX_STABILIZATION_WINDOW_SECONDS",
    "MAX_WINDOW_SECONDS",
    "METRIC_FIELDS",
    "METRIC_NAME_MAX",
    "METRIC_NAME_RE",
    "METRIC_TARGET_FIELDS",
    "METRIC_TYPES",
    "MIN_TARGET",
    "POLICY_FIELDS",
    "POLICY_TYPES",
    "PROMETHEUS_FIELDS",
    "QUERY_METRIC_TYPES",
    "REGION_RE",
    "RESOURCE_METRIC_TYPES",
    "RESOURCE_NAMES",
    "RESOURCE_SOURCE_FIELDS",
    "RESOURCE_TARGET_FIELDS",
    "RESOURCE_TARGET_TYPES",
    "ROOT_FIELDS",
    "RULE_FILE_SUFFIXES",
    "RULE_NAME_RE",
    "RULE_SCHEMA",
    "SCALING_RULES_FIELDS",
    "SELECT_POLICIES",
    "SERIES_FIELDS",
    "SERIES_NAME_RE",
    "SHOW_LIMIT",
    "TARGET_REF_FIELDS",
    "TARGET_TYPES",
    "URL_RE",
    "WORKSPACE_ID_RE",
    "ErrorList",
    "build_rule",
    "check_promql_structure",
    "child_path",
    "default_metric_name",
    "index_path",
    "json_type",
    "lint_document",
    "lint_rule",
    "load_rule_file",
    "load_rule_text",
    "parse_rule",
    "read_rule_documents",
    "rule_schema",
    "rule_to_document",
    "show",
    "suggest",
]
