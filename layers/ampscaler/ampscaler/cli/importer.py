"""``ampscaler import FILE...``: convert HPA / KEDA ScaledObject / Prometheus Adapter setups to rules."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from ampscaler.documents import MAX_MANIFEST_BYTES, DocumentError, read_document_file
from ampscaler.importers import (
    AdapterConfig,
    ImportInputError,
    ItemResult,
    import_manifests,
    load_adapter_config,
    load_manifests,
    rule_name,
)

EXAMPLES = [
    "kubectl get hpa,scaledobjects -A -o yaml > autoscalers.yaml",
    "ampscaler import autoscalers.yaml --adapter-config adapter-cm.yaml --cluster prod --out-dir rules/",
    "ampscaler import hpa.yaml --adapter-config adapter.yaml --output json > rules.json",
]

HELP_EPILOG = """\
inputs:
  FILE                 multi-document YAML ('-' for stdin): HorizontalPodAutoscalers
                       (autoscaling/v2, v2beta2, v2beta1, v1) and KEDA ScaledObjects
                       (keda.sh/v1alpha1); 'kind: List' from kubectl get -o yaml is flattened
  --adapter-config     the Prometheus Adapter configuration serving the HPAs' metrics: bare
                       (rules:/externalRules:/resourceRules:), its ConfigMap, the Helm chart's
                       values (rules.default/custom/external/resource), or a Flux HelmRelease
                       or Argo CD Application of the chart holding those values

refused whole, with the controller's reason: an HPA the API server would reject, a
  ScaledObject KEDA would reject (its webhook or its scalers' metadata parsing)
not convertible by design (reported per item, the rest still converts):
  resources other than cpu/memory, KEDA non-prometheus triggers, Utilization targets on
  Pods/Object/External, advanced.scalingModifiers, HPAs created by KEDA

exit status: 0 when at least one rule converted and nothing failed unexpectedly, 1 otherwise.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``import`` command."""
    parser = subparsers.add_parser(
        "import",
        help="convert HPA, KEDA ScaledObject and Prometheus Adapter setups into rules",
        description="Convert existing autoscalers into ampscaler rule documents ready for push.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="YAML manifests ('-' reads stdin)")
    parser.add_argument(
        "--adapter-config", metavar="FILE", default=None, help="Prometheus Adapter configuration (see below)"
    )
    parser.add_argument(
        "--cluster",
        metavar="NAME",
        default=None,
        help="target.cluster of every rule (default: left out, the scaler's CLUSTER_NAME applies)",
    )
    parser.add_argument(
        "--out-dir",
        metavar="DIR",
        default=None,
        help="write one <cluster>__<namespace>__<name>.json per rule",
    )
    parser.set_defaults(func=run)


def _read(path: str) -> str:
    """The file's text under the shared decoding policy (strict UTF-8, BOM dropped, size cap)."""
    try:
        return read_document_file(path, limit=MAX_MANIFEST_BYTES, what="file")
    except DocumentError as exc:
        raise ImportInputError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Convert every manifest in ``args.files``; print rules and per-item problems.

    Returns
    -------
    int
        0 when at least one rule converted and nothing failed unexpectedly (unreadable or
        malformed input, an internal error); 1 otherwise.
    """
    output = getattr(args, "output", None) or "table"
    cluster: str | None = getattr(args, "cluster", None)
    failures: list[str] = []

    adapter: AdapterConfig | None = None
    if getattr(args, "adapter_config", None):
        try:
            adapter = load_adapter_config(_read(args.adapter_config))
        except (OSError, ImportInputError) as exc:
            # Converting without it would report every HPA metric as needing it: misleading.
            print(f"error: --adapter-config {args.adapter_config}: {_reason(exc)}", file=sys.stderr)
            return 1

    results: list[ItemResult] = []
    for path in args.files:
        try:
            manifests = load_manifests(_read(path))
        except (OSError, ImportInputError) as exc:
            failures.append(f"{path}: {_reason(exc)}")
            continue
        results.extend(import_manifests(manifests, cluster, adapter))
    if adapter is not None:
        for note in adapter.notes:
            print(f"note: adapter config: {note}", file=sys.stderr)

    names = _assign_names(results, cluster)
    if args.out_dir:
        failures.extend(_write_files(Path(args.out_dir), results, names))
    failures.extend(f"{r.ref}: {p.reason}" for r in results if r.unexpected for p in r.problems)

    if output == "json":
        documents = [r.document for r in results if r.document is not None]
        print(json.dumps(documents, indent=2))
        _print_problems(results, sys.stderr)
    else:
        _print_table(results, names, args.out_dir, sys.stdout)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)

    converted = sum(1 for r in results if r.document is not None)
    if converted == 0:
        print(f"error: no rule converted ({len(results)} item(s) read)", file=sys.stderr)
        return 1
    return 1 if failures else 0


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    return str(exc)


def _assign_names(results: list[ItemResult], cluster: str | None) -> dict[int, str]:
    """Rule names by result index; a second item with the same name is not converted."""
    names: dict[int, str] = {}
    seen: dict[str, ItemResult] = {}
    for index, result in enumerate(results):
        if result.document is None:
            continue
        name = rule_name(result.ref, cluster)
        if name in seen:
            result.skip(f"same rule name {name!r} as {seen[name].ref}; rename one of them")
            result.document = None
            continue
        seen[name] = result
        names[index] = name
    return names


def _write_files(out_dir: Path, results: list[ItemResult], names: dict[int, str]) -> list[str]:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return [f"--out-dir {out_dir}: {_reason(exc)}"]
    failures: list[str] = []
    for index, name in names.items():
        path = out_dir / f"{name}.json"
        try:
            path.write_text(json.dumps(results[index].document, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            failures.append(f"{path}: cannot write: {exc.strerror or exc}")
    return failures


def _print_problems(results: list[ItemResult], stream: TextIO) -> None:
    for result in results:
        for problem in result.problems:
            print(f"not converted: {problem}", file=stream)
        for note in result.notes:
            print(f"note: {result.ref}: {note}", file=stream)


def _status(result: ItemResult) -> str:
    if result.document is None:
        return "skipped"
    return "partial" if result.problems else "converted"


def _print_table(
    results: list[ItemResult], names: dict[int, str], out_dir: str | None, stream: TextIO
) -> None:
    rows: list[list[str]] = [["ITEM", "STATUS", "RULE", "METRICS"]]
    for index, result in enumerate(results):
        document: dict[str, Any] | None = result.document
        metrics = ", ".join(str(m["name"]) for m in document["metrics"]) if document else "-"
        rule = names.get(index, "-")
        if out_dir and index in names:
            rule = str(Path(out_dir) / f"{rule}.json")
        rows.append([str(result.ref), _status(result), rule, metrics])
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(
            "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "   " + row[3], file=stream
        )
    problems = [str(p) for r in results for p in r.problems]
    notes = [f"{r.ref}: {n}" for r in results for n in r.notes]
    if problems:
        print("\nnot converted:", file=stream)
        for line in problems:
            print(f"  {line}", file=stream)
    if notes:
        print("\nnotes:", file=stream)
        for line in notes:
            print(f"  {line}", file=stream)
