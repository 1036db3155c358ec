"""Converters from existing autoscaling setups (HPA, KEDA, Prometheus Adapter) to rule documents."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ampscaler.documents import DocumentError, load_yaml_documents
from ampscaler.errors import RuleInvalidError
from ampscaler.importers.adapter import AdapterConfig, load_adapter_config
from ampscaler.importers.common import (
    ImportInputError,
    ItemRef,
    ItemResult,
    Problem,
    RuleDocument,
    as_list,
    as_mapping,
    item_ref,
)
from ampscaler.importers.hpa import HPA_KIND, convert_hpa
from ampscaler.importers.keda import SCALED_OBJECT_KIND, convert_scaled_object
from ampscaler.rule import lint_rule, parse_rule

__all__ = [
    "AdapterConfig",
    "ImportInputError",
    "ItemRef",
    "ItemResult",
    "Problem",
    "RuleDocument",
    "convert_manifest",
    "import_manifests",
    "load_adapter_config",
    "load_manifests",
    "rule_name",
]


def load_manifests(text: str) -> list[dict[str, Any]]:
    """Every object in a multi-document YAML text, with ``kind: List`` (``kubectl get -o yaml``)
    and ``*List`` kinds flattened into their items.

    Raises
    ------
    ImportInputError
        The text is not YAML (or is refused by the shared policy of ``ampscaler.documents``:
        aliases, duplicate keys, deep nesting), or a document is not a mapping.
    """
    try:
        documents = [d for d in load_yaml_documents(text) if d is not None]
    except DocumentError as exc:
        raise ImportInputError(str(exc)) from None
    manifests: list[dict[str, Any]] = []
    for number, doc in enumerate(documents, start=1):
        if not isinstance(doc, dict):
            raise ImportInputError(f"document {number} is a {type(doc).__name__}, not a Kubernetes object")
        if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            manifests.extend(as_mapping(item) for item in as_list(doc["items"]))
        else:
            manifests.append(doc)
    return manifests


def convert_manifest(
    manifest: Mapping[str, Any], cluster: str | None, adapter: AdapterConfig | None
) -> ItemResult:
    """Convert one object: an HPA or a ScaledObject; any other kind is reported as skipped."""
    kind = manifest.get("kind")
    if kind == HPA_KIND:
        return convert_hpa(manifest, cluster, adapter)
    if kind == SCALED_OBJECT_KIND:
        return convert_scaled_object(manifest, cluster)
    result = ItemResult(item_ref(manifest))
    hint = "; pass Prometheus Adapter configuration with --adapter-config" if kind == "ConfigMap" else ""
    result.skip(f"kind {kind!r} is not a HorizontalPodAutoscaler or ScaledObject{hint}")
    return result


def import_manifests(
    manifests: Iterable[Mapping[str, Any]], cluster: str | None = None, adapter: AdapterConfig | None = None
) -> list[ItemResult]:
    """Convert every manifest, then check each document with the rule parser.

    A document the parser rejects is not returned as converted: its errors become problems of
    that item, and the other items are unaffected.

    Parameters
    ----------
    manifests
        Kubernetes objects as read by ``load_manifests``.
    cluster
        ``target.cluster`` for every rule; None leaves it to the stack default.
    adapter
        Prometheus Adapter configuration for HPA custom/external metrics, if any.

    Returns
    -------
    list[ItemResult]
        One result per manifest, in input order.
    """
    results: list[ItemResult] = []
    for manifest in manifests:
        try:
            result = convert_manifest(manifest, cluster, adapter)
            if result.document is not None:
                _validate(result, cluster)
        except Exception as exc:  # one manifest's bug must not stop the others; reported exactly
            result = ItemResult(item_ref(manifest), unexpected=True)
            result.skip(f"internal error while converting: {type(exc).__name__}: {exc}")
        results.append(result)
    return results


# parse_rule needs some cluster for a target without one; the document itself keeps it out so
# the scaler's CLUSTER_NAME applies when the rule is pushed.
_VALIDATION_CLUSTER = "imported"


def _validate(result: ItemResult, cluster: str | None) -> None:
    """Run the rule parser and linter on a converted document, as ``ampscaler validate`` would.

    Errors make the item not converted (each becomes a problem); lint warnings become notes.
    """
    assert result.document is not None
    try:
        rule = parse_rule(result.document, default_cluster=cluster or _VALIDATION_CLUSTER)
    except RuleInvalidError as exc:
        for error in exc.errors or [str(exc)]:
            result.skip(f"converted rule is invalid: {error}")
        result.document = None
        return
    errors, warnings = lint_rule(rule)
    for error in errors:
        result.skip(f"converted rule is invalid: {error}")
    if errors:
        result.document = None
    result.notes.extend(f"validate: {warning}" for warning in warnings)


def rule_name(ref: ItemRef, cluster: str | None) -> str:
    """``<cluster>__<namespace>__<name>``: the rule's name and its file name without ``.json``.

    The cluster part is left out when no cluster was given.
    """
    parts = [cluster] if cluster else []
    return "__".join([*parts, ref.namespace, ref.name])
