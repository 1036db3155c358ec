"""Values shared by the importers: item references, per-item outcomes, quantities, selectors."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from ampscaler.model import API_VERSION

# A rule document as it will be written to SSM: plain JSON-compatible values only.
RuleDocument = dict[str, Any]


@dataclass(frozen=True)
class ItemRef:
    """Which manifest an outcome belongs to, as ``kubectl`` would name it."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Problem:
    """Something that could not be converted, with the field it came from and why."""

    ref: ItemRef
    reason: str
    # JSON-ish path inside the manifest ("spec.metrics[1]"), None when the whole item is meant.
    path: str | None = None

    def __str__(self) -> str:
        where = f" {self.path}" if self.path else ""
        return f"{self.ref}{where}: {self.reason}"


@dataclass
class ItemResult:
    """The outcome of converting one manifest: a rule document, or none, plus what was left out."""

    ref: ItemRef
    document: RuleDocument | None = None
    problems: list[Problem] = field(default_factory=list)
    # Lossy but converted: a setting kept with different semantics, or dropped as not applicable.
    notes: list[str] = field(default_factory=list)
    # True when conversion failed for a reason other than the input (a bug): exit status 1.
    unexpected: bool = False

    def note(self, text: str) -> None:
        """Record a lossy conversion once, however many fields caused it."""
        if text not in self.notes:
            self.notes.append(text)

    def skip(self, reason: str, path: str | None = None) -> None:
        """Record that ``path`` (or the whole item) was not converted."""
        self.problems.append(Problem(self.ref, reason, path))


class ImportInputError(Exception):
    """A manifest or adapter configuration is malformed beyond per-field reporting."""


def integer_field(
    spec: Mapping[str, Any], key: str, default: int, result: ItemResult, path: str
) -> int | None:
    """``spec[key]`` (or ``default``) as an int; a non-integer is recorded as the item's problem (None).

    The API server would have refused such a manifest; a hand-edited file may still hold one.
    """
    raw = spec.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not float(raw).is_integer():
        shown = repr(raw) if isinstance(raw, int | float | bool) or raw is None else type(raw).__name__
        result.skip(f"{path} must be an integer, got {shown[:40]}", path)
        return None
    return int(raw)


def as_mapping(value: object) -> dict[str, Any]:
    """``value`` if it is a mapping (YAML object), else an empty dict."""
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    """``value`` if it is a list, else an empty list."""
    return value if isinstance(value, list) else []


def item_ref(manifest: Mapping[str, Any], default_namespace: str = "default") -> ItemRef:
    """The kind/namespace/name of a manifest; the namespace defaults as ``kubectl apply`` does."""
    meta = as_mapping(manifest.get("metadata"))
    return ItemRef(
        kind=str(manifest.get("kind") or "?"),
        namespace=str(meta.get("namespace") or default_namespace),
        name=str(meta.get("name") or "?"),
    )


def target_document(
    cluster: str | None, namespace: str, kind: str, name: str, api_version: str | None
) -> dict[str, Any]:
    """The rule's ``target`` block; ``cluster`` left out when not given (the stack default applies)."""
    target: dict[str, Any] = {}
    if cluster:
        target["cluster"] = cluster
    target.update({"namespace": namespace, "kind": kind, "name": name})
    # apps/v1 is the rule format's default for Deployment/StatefulSet; spell out anything else.
    if api_version and api_version != "apps/v1":
        target["apiVersion"] = api_version
    return target


def new_rule_document(target: dict[str, Any], min_replicas: int, max_replicas: int) -> RuleDocument:
    """The fixed head every imported rule starts with."""
    return {
        "apiVersion": API_VERSION,
        "target": target,
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "metrics": [],
    }


def copy_behavior(behavior: object) -> dict[str, Any] | None:
    """An HPA ``behavior`` block copied field for field (the rule format uses the same JSON)."""
    if not isinstance(behavior, dict) or not behavior:
        return None
    return cast(dict[str, Any], copy.deepcopy(behavior))


# The rule format's metric names: a letter, then letters, digits, '_' or '-'; at most 63.
_METRIC_NAME_MAX = 63


def unique_metric_name(wanted: str, taken: set[str]) -> str:
    """``wanted`` made a valid rule metric name, suffixed ``-2``, ``-3``... when already taken.

    External metric names may hold characters the rule format does not allow (dots, slashes,
    ``|``); those become ``_``.
    """
    base = re.sub(r"[^A-Za-z0-9_-]", "_", wanted) or "metric"
    if not base[0].isalpha():
        base = "m" + base
    base = base[:_METRIC_NAME_MAX]
    name, n = base, 2
    while name in taken:
        suffix = f"-{n}"
        name = base[: _METRIC_NAME_MAX - len(suffix)] + suffix
        n += 1
    taken.add(name)
    return name


Requirement = tuple[str, str, list[str]]


def selector_requirements(selector: object) -> list[Requirement]:
    """A metav1.LabelSelector as sorted (key, operator, sorted values) requirements.

    Upstream: metav1.LabelSelectorAsSelector; matchLabels become ``Equals``, matchExpressions
    keep their operator, and ``labels.Selector`` keeps requirements sorted by key.

    Raises
    ------
    ValueError
        An expression uses an operator a label selector does not have.
    """
    spec = as_mapping(selector)
    requirements: list[Requirement] = []
    for key, value in as_mapping(spec.get("matchLabels")).items():
        requirements.append((str(key), "Equals", [str(value)]))
    for expr in as_list(spec.get("matchExpressions")):
        expr_map = as_mapping(expr)
        operator = str(expr_map.get("operator", ""))
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(
                f"label selector operator {operator!r} is not one of In/NotIn/Exists/DoesNotExist"
            )
        values = sorted(str(v) for v in as_list(expr_map.get("values")))
        requirements.append((str(expr_map.get("key", "")), operator, values))
    return sorted(requirements, key=lambda r: r[0])
