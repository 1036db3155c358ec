"""Where Prometheus Adapter configuration is kept: a bare file, its ConfigMap, the Helm chart's values
(a values file, a Flux ``HelmRelease``, an Argo CD ``Application``), read into one config mapping.

The Helm chart is prometheus-community/helm-charts ``charts/prometheus-adapter``: its
``templates/configmap.yaml`` renders ``rules.default`` (default true) as six fixed rules followed
by ``rules.custom`` under ``rules:``, ``rules.external`` as ``externalRules:`` and
``rules.resource`` as ``resourceRules:``; with ``rules.existing`` set it renders no ConfigMap and
mounts the named one instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ampscaler.documents import DocumentError, load_yaml, load_yaml_documents
from ampscaler.importers.common import ImportInputError, as_list, as_mapping

CONFIG_KEYS = ("rules", "externalRules", "resourceRules")
CHART_NAME = "prometheus-adapter"
# Keys of the chart's values.yaml that a values file without ``rules`` still shows.
_CHART_VALUE_KEYS = ("prometheus", "metricsRelistInterval", "image", "listenPort", "logLevel")

_CONTAINER_SERIES = '{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}'
_OTHER_SERIES = '{namespace!="",__name__!~"^container_.*"}'
_POD_NAMESPACE = {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}}
_TEMPLATE = {"template": "<<.Resource>>"}
_RATE_CONTAINER = 'sum(rate(<<.Series>>{<<.LabelMatchers>>,container!="POD"}[5m])) by (<<.GroupBy>>)'
_RATE_OTHER = "sum(rate(<<.Series>>{<<.LabelMatchers>>}[5m])) by (<<.GroupBy>>)"

# The chart's ``rules.default: true`` rules, in the order templates/configmap.yaml renders them
# (container counters in seconds, other container counters, container gauges, then the same three
# shapes for any namespaced series).
CHART_DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {
        "seriesQuery": _CONTAINER_SERIES,
        "seriesFilters": [],
        "resources": _POD_NAMESPACE,
        "name": {"matches": "^container_(.*)_seconds_total$", "as": ""},
        "metricsQuery": _RATE_CONTAINER,
    },
    {
        "seriesQuery": _CONTAINER_SERIES,
        "seriesFilters": [{"isNot": "^container_.*_seconds_total$"}],
        "resources": _POD_NAMESPACE,
        "name": {"matches": "^container_(.*)_total$", "as": ""},
        "metricsQuery": _RATE_CONTAINER,
    },
    {
        "seriesQuery": _CONTAINER_SERIES,
        "seriesFilters": [{"isNot": "^container_.*_total$"}],
        "resources": _POD_NAMESPACE,
        "name": {"matches": "^container_(.*)$", "as": ""},
        "metricsQuery": 'sum(<<.Series>>{<<.LabelMatchers>>,container!="POD"}) by (<<.GroupBy>>)',
    },
    {
        "seriesQuery": _OTHER_SERIES,
        "seriesFilters": [{"isNot": ".*_total$"}],
        "resources": _TEMPLATE,
        "name": {"matches": "", "as": ""},
        "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
    },
    {
        "seriesQuery": _OTHER_SERIES,
        "seriesFilters": [{"isNot": ".*_seconds_total"}],
        "resources": _TEMPLATE,
        "name": {"matches": "^(.*)_total$", "as": ""},
        "metricsQuery": _RATE_OTHER,
    },
    {
        "seriesQuery": _OTHER_SERIES,
        "seriesFilters": [],
        "resources": _TEMPLATE,
        "name": {"matches": "^(.*)_seconds_total$", "as": ""},
        "metricsQuery": _RATE_OTHER,
    },
)


def read_adapter_config(text: str) -> tuple[dict[str, Any], list[str]]:
    """The adapter configuration held by ``text``, and notes on where it came from.

    Parameters
    ----------
    text
        YAML, possibly several documents: the first one that holds adapter configuration is used
        (a bare config, a ConfigMap, chart values, a HelmRelease or Application of the
        prometheus-adapter chart); other documents are passed over.

    Returns
    -------
    tuple[dict[str, Any], list[str]]
        The config with ``rules``/``externalRules``/``resourceRules`` at the top, and notes
        (which document and key it came from, what could not be followed).

    Raises
    ------
    ImportInputError
        Nothing recognisable, or a recognised document is malformed (the message says which).
    """
    try:
        documents = [d for d in load_yaml_documents(text) if d is not None]
    except DocumentError as exc:
        raise ImportInputError(f"adapter config: {exc}") from None
    seen: list[str] = []
    for doc in documents:
        body = as_mapping(doc)
        notes: list[str] = []
        found = _from_document(body, notes)
        if found is not None:
            return found, notes
        seen.append(_describe(body))
    what = ", ".join(seen) if seen else "no documents"
    raise ImportInputError(
        "adapter config has none of rules/externalRules/resourceRules, and is not a ConfigMap, prometheus-adapter "
        f"chart values, HelmRelease or Application holding them (read: {what})"
    )


def _describe(body: Mapping[str, Any]) -> str:
    kind = body.get("kind")
    name = as_mapping(body.get("metadata")).get("name")
    if kind:
        return f"{kind} {name}" if name else str(kind)
    return "a mapping with keys " + ", ".join(sorted(map(str, body))[:6]) if body else "an empty document"


def _from_document(body: Mapping[str, Any], notes: list[str]) -> dict[str, Any] | None:
    kind = body.get("kind")
    api_version = str(body.get("apiVersion") or "")
    name = as_mapping(body.get("metadata")).get("name") or "?"
    if kind == "ConfigMap":
        return _from_configmap(body, str(name), notes)
    if kind == "HelmRelease" and api_version.startswith("helm.toolkit.fluxcd.io/"):
        return _from_helm_release(body, str(name), notes)
    if kind == "Application" and api_version.startswith("argoproj.io/"):
        return _from_application(body, str(name), notes)
    if kind:
        return None
    if isinstance(body.get("rules"), dict) or (
        not any(k in body for k in CONFIG_KEYS) and any(k in body for k in _CHART_VALUE_KEYS)
    ):
        return chart_values_config(body, "values", notes)
    if any(key in body for key in CONFIG_KEYS):
        return dict(body)
    return None


def _from_configmap(body: Mapping[str, Any], name: str, notes: list[str]) -> dict[str, Any]:
    """The config in a ConfigMap's data: ``config.yaml`` (what the adapter's --config points at in
    the chart and the manifests), else the one key whose YAML holds adapter configuration."""
    data = as_mapping(body.get("data"))
    keys = ["config.yaml"] if isinstance(data.get("config.yaml"), str) else sorted(map(str, data))
    holding: list[tuple[str, dict[str, Any]]] = []
    for key in keys:
        raw = data.get(key)
        if not isinstance(raw, str):
            continue
        try:
            parsed = as_mapping(load_yaml(raw))
        except DocumentError as exc:
            raise ImportInputError(f'adapter ConfigMap {name} data["{key}"]: {exc}') from None
        if any(k in parsed for k in CONFIG_KEYS):
            holding.append((key, parsed))
    if not holding:
        raise ImportInputError(
            f"adapter ConfigMap {name}: no data key holds rules/externalRules/resourceRules "
            f"(keys: {', '.join(sorted(map(str, data))) or 'none'})"
        )
    if len(holding) > 1:
        raise ImportInputError(
            f"adapter ConfigMap {name}: several data keys hold adapter config ({', '.join(k for k, _ in holding)}); "
            "keep the one the adapter's --config reads"
        )
    key, parsed = holding[0]
    notes.append(f'read ConfigMap {name} data["{key}"]')
    return parsed


def chart_values_config(values: Mapping[str, Any], origin: str, notes: list[str]) -> dict[str, Any]:
    """The config the prometheus-adapter chart renders from ``values`` (templates/configmap.yaml).

    Raises
    ------
    ImportInputError
        ``rules.existing`` is set: the chart renders no rules and mounts that ConfigMap instead.
    """
    rules = as_mapping(values.get("rules"))
    if rules.get("existing"):
        raise ImportInputError(
            f"{origin}: rules.existing names ConfigMap {rules['existing']!r}, which the chart mounts instead of "
            "rendering rules; pass that ConfigMap with --adapter-config"
        )
    # The chart's values.yaml sets rules.default: true; a values file overrides only what it sets.
    default = rules.get("default", True)
    config: dict[str, Any] = {"rules": [], "externalRules": [], "resourceRules": None}
    if default:
        config["rules"].extend(dict(rule) for rule in CHART_DEFAULT_RULES)
    config["rules"].extend(as_list(rules.get("custom")))
    config["externalRules"] = as_list(rules.get("external"))
    config["resourceRules"] = rules.get("resource") or None
    implicit = "" if "default" in rules else " (the chart's default, not set here)"
    notes.append(
        f"read {origin} as prometheus-adapter chart values: rules.default {str(bool(default)).lower()}{implicit}"
        + (
            f" adds the chart's {len(CHART_DEFAULT_RULES)} default rules before rules.custom"
            if default
            else ""
        )
    )
    return config


def _from_helm_release(body: Mapping[str, Any], name: str, notes: list[str]) -> dict[str, Any] | None:
    """A Flux HelmRelease of the chart: ``spec.values``; ``spec.valuesFrom`` cannot be followed."""
    spec = as_mapping(body.get("spec"))
    chart = str(
        as_mapping(as_mapping(spec.get("chart")).get("spec")).get("chart")
        or as_mapping(spec.get("chartRef")).get("name")
        or ""
    )
    if CHART_NAME not in chart:
        return None
    for ref in map(as_mapping, as_list(spec.get("valuesFrom"))):
        target = f"{ref.get('kind', '?')} {ref.get('name', '?')}"
        key = f' key "{ref["valuesKey"]}"' if ref.get("valuesKey") else ""
        notes.append(
            f"HelmRelease {name}: spec.valuesFrom {target}{key} is merged by Flux in the cluster and cannot be "
            "followed from a file; rules set there are missing here (pass the rendered ConfigMap instead)"
        )
    return chart_values_config(as_mapping(spec.get("values")), f"HelmRelease {name} spec.values", notes)


def _from_application(body: Mapping[str, Any], name: str, notes: list[str]) -> dict[str, Any] | None:
    """An Argo CD Application of the chart: ``spec.source`` or the chart's entry of ``spec.sources``.

    Argo CD hands Helm ``helm.valuesObject`` when set, else the ``helm.values`` string
    (ApplicationSourceHelm.ValuesYAML); ``helm.valueFiles`` and ``helm.parameters`` live outside
    the object or override single keys and are noted, not applied.
    """
    spec = as_mapping(body.get("spec"))
    # Argo CD uses spec.sources when it is set and ignores spec.source then.
    if spec.get("sources"):
        sources = [(f"spec.sources[{i}]", as_mapping(s)) for i, s in enumerate(as_list(spec.get("sources")))]
    else:
        sources = [("spec.source", as_mapping(spec.get("source")))]
    for where, source in sources:
        if CHART_NAME not in str(source.get("chart") or source.get("path") or ""):
            continue
        helm = as_mapping(source.get("helm"))
        if helm.get("valuesObject") is not None:
            values = as_mapping(helm.get("valuesObject"))
            origin = f"Application {name} {where}.helm.valuesObject"
        else:
            raw = helm.get("values") or ""
            try:
                values = as_mapping(load_yaml(str(raw))) if raw else {}
            except DocumentError as exc:
                raise ImportInputError(f"Application {name} {where}.helm.values: {exc}") from None
            origin = f"Application {name} {where}.helm.values"
        for file in as_list(helm.get("valueFiles")):
            notes.append(
                f"Application {name}: {where}.helm.valueFiles {file} is read by Argo CD from the repository and "
                "cannot be followed from here; rules set there are missing (pass that file with --adapter-config)"
            )
        for param in map(as_mapping, as_list(helm.get("parameters"))):
            if str(param.get("name", "")).startswith("rules"):
                notes.append(
                    f"Application {name}: {where}.helm.parameters {param.get('name')} is not applied here"
                )
        return chart_values_config(values, origin, notes)
    return None
