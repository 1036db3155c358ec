"""Prometheus Adapter configuration: find the rule behind an HPA metric and render its PromQL.

Mirrors kubernetes-sigs/prometheus-adapter ``pkg/naming`` (metric_namer.go, metrics_query.go,
resource_converter.go): discovery (``seriesQuery``/``seriesFilters``), naming
(``name.matches``/``name.as``), association (``resources.overrides``/``template``) and the
``metricsQuery`` Go template with ``<<`` ``>>`` delimiters. There is no Prometheus to discover
series from here, so the series name is worked out backwards from the metric name and then
checked forwards exactly as the adapter names series.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ampscaler.importers.adapter_sources import read_adapter_config
from ampscaler.importers.common import (
    ImportInputError,
    Requirement,
    as_list,
    as_mapping,
    selector_requirements,
)

RuleSection = Literal["rules", "externalRules"]


class AdapterLookupError(Exception):
    """No adapter rule can serve the metric, or its query cannot be rendered; the message says why."""


@dataclass(frozen=True)
class GroupResource:
    """A Kubernetes group-resource as an adapter override names it, singularized."""

    group: str
    resource: str


@dataclass(frozen=True)
class AdapterRule:
    """One ``rules``/``externalRules`` entry of the adapter configuration."""

    section: RuleSection
    index: int
    series_query: str
    metrics_query: str
    series_filters: tuple[tuple[bool, str], ...] = ()
    overrides: Mapping[str, GroupResource] = field(default_factory=dict)
    template: str | None = None
    name_matches: str = ""
    name_as: str = ""
    # externalRules only: False drops the HPA's namespace from the label matchers.
    namespaced: bool = True

    @property
    def where(self) -> str:
        """``rules[2]`` — how the report points at this rule."""
        return f"{self.section}[{self.index}]"


@dataclass(frozen=True)
class ResolvedMetric:
    """An adapter rule and the Prometheus series name it maps an HPA metric name from."""

    rule: AdapterRule
    series: str
    # Other entries that would expose the same name from another series, if it exists.
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdapterConfig:
    """The parts of a prometheus-adapter config that matter for custom and external metrics."""

    rules: tuple[AdapterRule, ...] = ()
    external_rules: tuple[AdapterRule, ...] = ()
    has_resource_rules: bool = False
    # resourceRules as the rule format's per-metric ``series`` overrides, by resource (cpu, memory).
    resource_series: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # What was read where, and what could not be followed (valuesFrom, valueFiles, ...).
    notes: tuple[str, ...] = ()

    def resolve(
        self, metric_name: str, section: RuleSection, needs: Sequence[GroupResource] = ()
    ) -> ResolvedMetric:
        """Find the rule in ``section`` that exposes ``metric_name`` for the resources in ``needs``.

        The adapter requires its rules to be mutually exclusive; the first match wins here.

        Raises
        ------
        AdapterLookupError
            No rule exposes it; the message names the nearest entry and why it does not
            (see ``nearest_miss`` for the measure).
        """
        candidates = self.rules if section == "rules" else self.external_rules
        what = "custom metric" if section == "rules" else "external metric"
        if not candidates:
            raise AdapterLookupError(f"the adapter config has no {section}, so no {what} {metric_name!r}")
        misses: list[Miss] = []
        found: list[ResolvedMetric] = []
        for rule in candidates:
            outcome = diagnose(rule, metric_name, needs)
            if isinstance(outcome, ResolvedMetric):
                found.append(outcome)
            else:
                misses.append(outcome)
        if found:
            # Without Prometheus to list series, several entries may name the metric from different
            # series (the chart's default rules name almost anything). An entry whose seriesQuery
            # names its series literally is taken first, then the series closest to the metric's
            # own name; the others are reported with it.
            best = min(
                found,
                key=lambda r: (
                    _series_query_names(r.rule.series_query)[0] is None,
                    edit_distance(r.series, metric_name),
                    r.rule.index,
                ),
            )
            literal = _series_query_names(best.rule.series_query)[0] is not None
            # Beside a literal series, guesses through other entries' regexes are not worth a note.
            others = tuple(
                f"{r.rule.where} from series {r.series!r}"
                for r in found
                if r is not best and (not literal or _series_query_names(r.rule.series_query)[0] is not None)
            )
            return replace(best, alternatives=others)
        nearest = nearest_miss(misses)
        raise AdapterLookupError(
            f"no adapter {section} entry exposes {what} {metric_name!r}; nearest is {nearest.rule.where} "
            f"(seriesQuery {nearest.rule.series_query!r}): {nearest.reason}"
        )


@dataclass(frozen=True)
class Miss:
    """Why one adapter entry does not expose a metric, and how far it got.

    ``stage`` counts the adapter's steps the entry passed for its best candidate series:
    0 seriesQuery unreadable, 1 no series the entry could name so, 2 seriesQuery does not select
    the series, 3 a seriesFilter drops it, 4 name.matches does not match it, 5 name.as names it
    otherwise, 6 named right but not associated with the resources the HPA asks for.
    """

    rule: AdapterRule
    stage: int
    # Levenshtein distance between the HPA's metric name and what the entry would expose
    # (or the series it would read, when it names none).
    distance: int
    reason: str


def nearest_miss(misses: Sequence[Miss]) -> Miss:
    """The entry closest to exposing the metric: the furthest ``stage``, then the smallest
    ``distance``, then the first in the file."""
    return min(misses, key=lambda m: (-m.stage, m.distance, m.rule.index))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1)."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def _whitespace_hint(pattern: str) -> str:
    if pattern != pattern.strip():
        return f" (the pattern has stray whitespace: {pattern!r})"
    return ""


def diagnose(
    rule: AdapterRule, metric_name: str, needs: Sequence[GroupResource] = ()
) -> ResolvedMetric | Miss:
    """Whether ``rule`` exposes ``metric_name`` for ``needs``, walking the adapter's steps.

    Upstream order: discovery (``seriesQuery``), ``seriesFilters``, naming (``name.matches``
    then ``name.as``), then association (``resources``: a label for each resource). Without a
    Prometheus to list series, candidate series are the literal name of ``seriesQuery``, or the
    names ``name.as``/``name.matches`` invert to (also with stray whitespace trimmed), or the
    metric name itself with and without ``_total``.
    """
    try:
        literal, name_matchers = _series_query_names(rule.series_query)
    except AdapterLookupError as exc:
        return Miss(rule, 0, len(metric_name), str(exc))
    if literal:
        candidates = [literal]
    else:
        trimmed = replace(rule, name_matches=rule.name_matches.strip(), name_as=rule.name_as.strip())
        candidates = _invert_name(rule, metric_name) + _invert_name(trimmed, metric_name)
        base = metric_name.removesuffix("_per_second")
        candidates += [metric_name, f"{metric_name}_total", f"{base}_total"]
    best: Miss | None = None
    # A series name is a Prometheus metric name: an inversion through stray whitespace is not one.
    for series in (c for c in dict.fromkeys(candidates) if re.fullmatch(_IDENT, c)):
        outcome = _walk(rule, series, metric_name, name_matchers, needs)
        if isinstance(outcome, ResolvedMetric):
            return outcome
        # Ties go to the earlier candidate: the inverted names come before the guesses.
        if best is None or outcome.stage > best.stage:
            best = outcome
    if best is None:
        return Miss(rule, 1, len(metric_name), f"no series name gives {metric_name!r}")
    return best


def _walk(
    rule: AdapterRule,
    series: str,
    metric_name: str,
    name_matchers: Sequence[tuple[str, str]],
    needs: Sequence[GroupResource],
) -> ResolvedMetric | Miss:
    far = edit_distance(metric_name, series)
    for op, value in name_matchers:
        if not _prom_label_match(op, value, series):
            return Miss(
                rule,
                2,
                far,
                f"its seriesQuery matcher __name__{op}{value!r} does not select series {series!r}",
            )
    for n, (positive, pattern) in enumerate(rule.series_filters):
        if (re.search(pattern, series) is not None) != positive:
            verb = "is" if positive else "isNot"
            return Miss(
                rule,
                3,
                far,
                f"seriesFilters[{n}] {verb} {pattern!r} drops series {series!r}{_whitespace_hint(pattern)}",
            )
    match = re.search(rule.name_matches or ".*", series)
    if match is None:
        return Miss(
            rule,
            4,
            far,
            f"name.matches {rule.name_matches!r} does not match series {series!r}{_whitespace_hint(rule.name_matches)}",
        )
    exposed = go_expand(rule.name_as, match)
    if exposed != metric_name:
        return Miss(
            rule,
            5,
            edit_distance(metric_name, exposed),
            f"name.as {rule.name_as!r} renames series {series!r} to {exposed!r}, not {metric_name!r}"
            + _whitespace_hint(rule.name_as),
        )
    for resource in needs:
        try:
            label_for_resource(rule, resource)
        except AdapterLookupError:
            mapped = (
                ", ".join(f"{label} -> {gr.resource}" for label, gr in rule.overrides.items()) or "nothing"
            )
            labels = ", ".join(_series_query_labels(rule.series_query)) or "none"
            return Miss(
                rule,
                6,
                0,
                f"it exposes series {series!r} as {metric_name!r} but associates no label with {resource.resource} "
                f"(resources.overrides maps {mapped}; seriesQuery labels: {labels}), so the adapter does not "
                f"serve it per {resource.resource}",
            )
    return ResolvedMetric(rule, series)


def _series_query_labels(query: str) -> list[str]:
    """The label names (other than ``__name__``) a seriesQuery's matchers mention."""
    body = query.split("{", 1)[1].rsplit("}", 1)[0] if "{" in query else ""
    return [m.group(1) for m in _MATCHER.finditer(body) if m.group(1) != "__name__"]


def load_adapter_config(text: str) -> AdapterConfig:
    """Parse adapter configuration wherever it is kept (``importers.adapter_sources``).

    Parameters
    ----------
    text
        YAML: a bare config (``rules:``/``externalRules:``/``resourceRules:``), its ConfigMap,
        prometheus-adapter chart values, or a Flux HelmRelease / Argo CD Application of the chart.

    Raises
    ------
    ImportInputError
        Nothing recognisable, or a rule is malformed (every problem listed).
    """
    body, notes = read_adapter_config(text)
    return _parse_config(body, notes)


def _parse_config(body: Mapping[str, Any], notes: list[str]) -> AdapterConfig:
    errors: list[str] = []
    rules = tuple(_parse_rule("rules", i, r, errors) for i, r in enumerate(as_list(body.get("rules"))))
    external = tuple(
        _parse_rule("externalRules", i, r, errors) for i, r in enumerate(as_list(body.get("externalRules")))
    )
    resource_rules = body.get("resourceRules")
    series = resource_series(as_mapping(resource_rules), errors, notes) if resource_rules else {}
    if errors:
        raise ImportInputError("adapter config is invalid: " + "; ".join(errors))
    return AdapterConfig(
        rules,
        external,
        has_resource_rules=bool(resource_rules),
        resource_series=series,
        notes=tuple(notes),
    )


# The series and labels of the rule format's default cAdvisor queries: an override equal to these
# is left out of the rule.
_DEFAULT_SERIES: dict[str, dict[str, str]] = {
    "cpu": {
        "metric": "container_cpu_usage_seconds_total",
        "namespaceLabel": "namespace",
        "podLabel": "pod",
        "containerLabel": "container",
    },
    "memory": {
        "metric": "container_memory_working_set_bytes",
        "namespaceLabel": "namespace",
        "podLabel": "pod",
        "containerLabel": "container",
    },
}
_SERIES_IN_QUERY = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^{}]*<<\.LabelMatchers>>[^{}]*)\}", re.S)
_RANGE = re.compile(r"\[\s*(\d+)([smh])\s*\]")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def resource_series(
    resource_rules: Mapping[str, Any], errors: list[str], notes: list[str]
) -> dict[str, dict[str, Any]]:
    """``resourceRules`` as the rule format's ``series`` overrides per resource.

    Upstream: prometheus-adapter pkg/resourceprovider — ``containerQuery`` is rendered with
    ``<<.LabelMatchers>>`` for the namespace and pods and grouped by pod and ``containerLabel``;
    its range (or ``window``) is the CPU rate window. The series name in front of
    ``{<<.LabelMatchers>>`` becomes ``series.metric``; the labels mapped to namespace and pod by
    ``resources.overrides``/``template`` become ``namespaceLabel``/``podLabel``.
    ``nodeQuery`` serves node metrics only and has no counterpart.
    """
    series: dict[str, dict[str, Any]] = {}
    window_seconds = _duration_seconds(str(resource_rules.get("window") or ""))
    for resource in ("cpu", "memory"):
        spec = as_mapping(resource_rules.get(resource))
        if not spec:
            continue
        where = f"resourceRules.{resource}"
        query = str(spec.get("containerQuery") or "")
        found = _SERIES_IN_QUERY.search(query)
        if found is None:
            notes.append(
                f"{where}.containerQuery has no <series>{{<<.LabelMatchers>>...}} selector to read; "
                f"{resource} metrics use the default query"
            )
            continue
        overrides: dict[str, Any] = {"metric": found.group(1)}
        container_label = str(spec.get("containerLabel") or "container")
        # The default query already drops the pause container and empty container names.
        default_matchers = {"<<.LabelMatchers>>", f'{container_label}!=""', f'{container_label}!="POD"'}
        matchers = {re.sub(r"\s+", "", m).replace("'", '"') for m in found.group(2).split(",") if m.strip()}
        extra = matchers - default_matchers
        if extra:
            notes.append(
                f"{where}.containerQuery matches {', '.join(sorted(extra))} beyond the default query's "
                "container filters; the rule's default query leaves them out"
            )
        rule = _parse_rule("rules", 0, {"resources": spec.get("resources"), "metricsQuery": "-"}, [])
        for key, target in (("namespaceLabel", NAMESPACE), ("podLabel", POD)):
            try:
                overrides[key] = label_for_resource(rule, target)
            except AdapterLookupError:
                errors.append(f"{where}.resources maps no label to {target.resource}")
        overrides["containerLabel"] = container_label
        result = {key: value for key, value in overrides.items() if value != _DEFAULT_SERIES[resource][key]}
        if resource == "cpu":
            in_query = _RANGE.search(query)
            seconds = (
                int(in_query.group(1)) * _UNIT_SECONDS[in_query.group(2)] if in_query else window_seconds
            )
            if seconds:
                result["windowSeconds"] = seconds
        series[resource] = result
        if result:
            notes.append(
                f"{where} becomes series {json.dumps(result, separators=(', ', ': '))} on every {resource} "
                "Resource/ContainerResource metric"
            )
    return series


def _duration_seconds(text: str) -> int | None:
    """A Prometheus duration of one unit ("3m", "90s") in seconds; None when empty or not one."""
    match = re.fullmatch(r"\s*(\d+)([smh])\s*", text)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else None


def _parse_rule(section: RuleSection, index: int, raw: object, errors: list[str]) -> AdapterRule:
    where = f"{section}[{index}]"
    spec = as_mapping(raw)
    filters: list[tuple[bool, str]] = []
    for n, item in enumerate(as_list(spec.get("seriesFilters"))):
        flt = as_mapping(item)
        if bool(flt.get("is")) == bool(flt.get("isNot")):
            errors.append(f"{where}.seriesFilters[{n}]: needs exactly one of is/isNot")
            continue
        filters.append((True, str(flt["is"])) if flt.get("is") else (False, str(flt["isNot"])))
    resources = as_mapping(spec.get("resources"))
    overrides = {
        str(label): GroupResource(
            group=str(as_mapping(gr).get("group") or ""),
            resource=_singular(str(as_mapping(gr).get("resource", ""))),
        )
        for label, gr in as_mapping(resources.get("overrides")).items()
    }
    name = as_mapping(spec.get("name"))
    matches = str(name.get("matches") or "")
    name_as = str(name.get("as") or "")
    for label, pattern in [("name.matches", matches)] + [("seriesFilters", p) for _, p in filters]:
        try:
            re.compile(pattern)
        except re.error as exc:
            errors.append(f"{where}.{label}: {pattern!r} is not a valid regular expression ({exc})")
    if not name_as:
        # Upstream NamersFromConfig: $0 without capture groups, $1 with exactly one.
        groups = re.compile(matches or ".*").groups if _compiles(matches) else 0
        if groups == 0:
            name_as = "$0"
        elif groups == 1:
            name_as = "$1"
        else:
            errors.append(f"{where}.name.as: required when name.matches has {groups} capture groups")
    metrics_query = str(spec.get("metricsQuery") or "")
    if not metrics_query:
        errors.append(f"{where}.metricsQuery: missing")
    return AdapterRule(
        section=section,
        index=index,
        series_query=str(spec.get("seriesQuery") or ""),
        metrics_query=metrics_query,
        series_filters=tuple(filters),
        overrides=overrides,
        template=str(resources["template"]) if resources.get("template") else None,
        name_matches=matches,
        name_as=name_as,
        namespaced=resources.get("namespaced") is not False,
    )


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


# --- naming -------------------------------------------------------------------------------


def go_expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.ExpandString``: ``$1``, ``${1}``, ``$name``, ``$$``.

    Upstream: regexp.(*Regexp).expand. A ``$name`` takes the longest run of letters, digits
    and underscores, so ``$1_per_second`` names group "1_per_second" (empty) — which is why the
    adapter docs write ``${1}_per_second``. A malformed ``$`` is copied through.
    """
    out: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        if template.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        ref = _extract_ref(template, i + 1)
        if ref is None:
            out.append("$")
            i += 1
            continue
        name, i = ref
        out.append(_group_value(match, name))
    return "".join(out)


def _extract_ref(template: str, start: int) -> tuple[str, int] | None:
    """Go regexp.extract: the group name after a ``$`` and where the reference ends."""
    brace = template.startswith("{", start)
    pos = start + 1 if brace else start
    end = pos
    while end < len(template) and (template[end].isalnum() or template[end] == "_"):
        end += 1
    if end == pos:
        return None
    if brace:
        if not template.startswith("}", end):
            return None
        return template[pos:end], end + 1
    return template[pos:end], end


def _group_value(match: re.Match[str], name: str) -> str:
    if name.isdigit():
        index = int(name)
        return (match.group(index) or "") if index <= (match.re.groups) else ""
    return (match.group(name) or "") if name in match.re.groupindex else ""


def metric_name_for_series(rule: AdapterRule, series: str) -> str | None:
    """The API metric name the adapter gives ``series``, or None when the rule filters it out.

    Upstream: metricNamer.FilterSeries + MetricNameForSeries (``name.matches`` is both a filter
    and the pattern ``name.as`` expands against; Go's MatchString is an unanchored search).
    """
    for positive, pattern in rule.series_filters:
        if (re.search(pattern, series) is not None) != positive:
            return None
    match = re.search(rule.name_matches or ".*", series)
    if match is None:
        return None
    return go_expand(rule.name_as, match)


def series_for_metric(rule: AdapterRule, metric_name: str) -> str | None:
    """The series name this rule would expose as ``metric_name``, or None if it would not.

    Candidates come from the literal name in ``seriesQuery`` or, for ``{__name__=~...}``
    queries, from inverting ``name.as`` into ``name.matches``; each candidate is then named
    forwards and must satisfy the ``__name__`` matchers of ``seriesQuery``.

    Raises
    ------
    AdapterLookupError
        The rule's seriesQuery cannot be parsed.
    """
    literal, name_matchers = _series_query_names(rule.series_query)
    candidates = [literal] if literal else _invert_name(rule, metric_name)
    for series in (c for c in candidates if re.fullmatch(_IDENT, c)):
        if metric_name_for_series(rule, series) != metric_name:
            continue
        if all(_prom_label_match(op, value, series) for op, value in name_matchers):
            return series
    return None


_IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_MATCHER = re.compile(
    r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*(,|$)",
    re.S,
)


def _series_query_names(query: str) -> tuple[str | None, list[tuple[str, str]]]:
    """The literal metric name and the ``__name__`` matchers of a series selector."""
    match = re.fullmatch(rf"\s*({_IDENT})?\s*(?:\{{(.*)\}})?\s*", query, re.S)
    if match is None or not query.strip():
        raise AdapterLookupError(f"cannot read seriesQuery {query!r}")
    literal = match.group(1)
    name_matchers: list[tuple[str, str]] = []
    body = match.group(2) or ""
    pos = 0
    while pos < len(body.strip()):
        m = _MATCHER.match(body, pos)
        if m is None:
            raise AdapterLookupError(f"cannot read the label matchers of seriesQuery {query!r}")
        label, op, quoted = m.group(1), m.group(2), m.group(3)
        value = _unquote(quoted)
        if label == "__name__":
            if op == "=" and literal is None:
                literal = value
            else:
                name_matchers.append((op, value))
        pos = m.end()
    return literal, name_matchers


def _unquote(quoted: str) -> str:
    """A PromQL string literal's value ("...", '...' or `...`)."""
    inner = quoted[1:-1]
    if quoted.startswith("`"):
        return inner
    if quoted.startswith("'"):
        inner = inner.replace("\\'", "'").replace('"', '\\"')
    try:
        return str(json.loads('"' + inner + '"'))
    except ValueError:
        return inner


def _prom_label_match(op: str, value: str, actual: str) -> bool:
    """PromQL matcher semantics: regexes are fully anchored."""
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    hit = re.fullmatch(value, actual) is not None
    return hit if op == "=~" else not hit


def _invert_name(rule: AdapterRule, metric_name: str) -> list[str]:
    """Candidate series names that ``name.as`` could have turned into ``metric_name``."""
    tokens = _as_tokens(rule.name_as)
    pattern: list[str] = []
    seen: dict[str, str] = {}
    for token in tokens:
        if isinstance(token, str):
            pattern.append(re.escape(token))
        else:
            group = f"g{len(seen)}"
            if token[0] in seen:
                pattern.append(f"(?P={seen[token[0]]})")
            else:
                seen[token[0]] = group
                pattern.append(f"(?P<{group}>.+)")
    match = re.fullmatch("".join(pattern), metric_name)
    if match is None:
        return []
    values = {ref: match.group(group) for ref, group in seen.items()}
    if "0" in values:
        return [values["0"]]
    filled = _fill_pattern(rule.name_matches or ".*", values)
    return [filled] if filled is not None else []


def _as_tokens(template: str) -> list[str | tuple[str]]:
    """``name.as`` split into literal text and (group name,) references, as go_expand reads it."""
    tokens: list[str | tuple[str]] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        if template.startswith("$$", i):
            literal.append("$")
            i += 2
            continue
        ref = _extract_ref(template, i + 1) if template[i] == "$" else None
        if ref is None:
            literal.append(template[i])
            i += 1
            continue
        if literal:
            tokens.append("".join(literal))
            literal = []
        tokens.append((ref[0],))
        i = ref[1]
    if literal:
        tokens.append("".join(literal))
    return tokens


_META = set(".^$*+?{}[]|()")


def _fill_pattern(pattern: str, values: Mapping[str, str]) -> str | None:
    """Rebuild the string ``pattern`` matched by putting ``values`` into its capture groups.

    Only patterns whose text outside the groups is literal can be inverted (the usual
    ``^(.*)_total$`` shape); anything else gives None.
    """
    body = pattern[1:] if pattern.startswith("^") else pattern
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1]
    out: list[str] = []
    group = 0
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            if body[i + 1].isalnum():
                return None  # \d, \w, ... are classes, not literals
            out.append(body[i + 1])
            i += 2
            continue
        if char == "(":
            capturing = not body.startswith("(?", i) or body.startswith("(?P<", i)
            end = _group_end(body, i)
            if end is None or not capturing:
                return None
            group += 1
            name = str(group)
            named = re.match(r"\(\?P<(\w+)>", body[i:])
            value = values.get(name, values.get(named.group(1)) if named else None)
            if value is None:
                return None
            out.append(value)
            i = end + 1
            continue
        if char in _META:
            return None
        out.append(char)
        i += 1
    return "".join(out)


def _group_end(body: str, start: int) -> int | None:
    depth = 0
    i = start
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body[i] == "(":
            depth += 1
        elif body[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


# --- association ----------------------------------------------------------------------------

NAMESPACE = GroupResource("", "namespace")
POD = GroupResource("", "pod")


def _singular(resource: str) -> str:
    """A plural resource name made singular the way ``kubectl`` accepts both (pods -> pod)."""
    res = resource.strip().lower()
    for suffix in ("sses", "xes", "ches", "shes"):
        if res.endswith(suffix):
            return res[:-2]
    if res.endswith("ies"):
        return res[:-3] + "y"
    if res.endswith("s") and not res.endswith("ss"):
        return res[:-1]
    return res


def label_for_resource(rule: AdapterRule, resource: GroupResource) -> str:
    """The Prometheus label that names ``resource`` for this rule.

    Upstream: resourceConverter.LabelForResource — an override first, else the ``template``
    rendered with ``.Group`` (dots and dashes as underscores) and the singular ``.Resource``.

    Raises
    ------
    AdapterLookupError
        Neither an override nor a template maps the resource.
    """
    for label, mapped in rule.overrides.items():
        # An override without a group is normalised by the adapter's REST mapper; match on resource.
        if mapped.resource == resource.resource and (not mapped.group or mapped.group == resource.group):
            return label
    if rule.template:
        group = resource.group.replace(".", "_").replace("-", "_")
        rendered = _render(
            rule.template, {"Group": group, "Resource": resource.resource}, f"{rule.where}.resources"
        )
        if rendered:
            return rendered
    what = f"{resource.group}/{resource.resource}" if resource.group else resource.resource
    raise AdapterLookupError(f"{rule.where} maps no label to {what} (resources.overrides/template)")


# --- querying -------------------------------------------------------------------------------

_ACTION = re.compile(r"<<-?\s*(.*?)\s*-?>>", re.S)


def _render(template: str, fields: Mapping[str, str], where: str) -> str:
    """Render a ``<<.Field>>`` Go template; other actions (range, index, ...) are refused."""

    def field_value(match: re.Match[str]) -> str:
        action = match.group(1)
        if not action.startswith(".") or action[1:] not in fields:
            raise AdapterLookupError(
                f"{where} uses <<{action}>>; only {', '.join('.' + k for k in fields)} can be rendered"
            )
        return fields[action[1:]]

    return _ACTION.sub(field_value, template)


def _quote(value: str) -> str:
    """Go's %q for a label value (what prom.LabelEq and friends use)."""
    return json.dumps(value, ensure_ascii=False)


def label_matchers(requirements: Sequence[Requirement]) -> list[str]:
    """PromQL matchers for a metric label selector.

    Upstream: metricsQuery.processQueryParts/selectMatcher/selectTargetValue — Equals with one
    value is ``=``, In is ``=~``, NotIn is ``!~``, several values join with ``|``, Exists is
    ``!=""`` and DoesNotExist ``=""``.
    """
    exprs: list[str] = []
    for key, operator, values in requirements:
        if not values:
            exprs.append(f'{key}!=""' if operator == "Exists" else f'{key}=""')
            continue
        if operator in ("Exists", "DoesNotExist"):
            raise AdapterLookupError(f"selector {key} {operator} cannot carry values")
        joined = "|".join(values)
        if operator == "Equals" and len(values) == 1:
            op = "="
        elif operator in ("Equals", "In"):
            op = "=~"
        else:
            op = "!~"
        exprs.append(f"{key}{op}{_quote(joined)}")
    return exprs


def _finish(query: str) -> str:
    # An empty <<.LabelMatchers>> next to literal matchers leaves "{," — the adapter would send
    # that and Prometheus would reject it, so the dangling comma is dropped.
    query = re.sub(r"\{\s*,", "{", query)
    query = re.sub(r",\s*\}", "}", query)
    return query.strip()


def render_pods_query(resolved: ResolvedMetric, namespace: str, metric_selector: object) -> tuple[str, str]:
    """The query for a ``Pods`` metric and the label that keys its series by pod.

    Upstream: metricsQuery.Build for group-resource pods. The adapter also matches
    ``pod=~"<the target's pods>"``; ampscaler selects the pods itself, so only the metric
    selector and ``namespace`` are kept, and ``<<.GroupBy>>`` is the pod label.

    Raises
    ------
    AdapterLookupError
        The rule maps no namespace or pod label, or its template cannot be rendered.
    """
    rule = resolved.rule
    pod_label = label_for_resource(rule, POD)
    exprs = label_matchers(_requirements(metric_selector))
    exprs.append(f"{label_for_resource(rule, NAMESPACE)}={_quote(namespace)}")
    query = _render(
        rule.metrics_query,
        {"Series": resolved.series, "LabelMatchers": ",".join(exprs), "GroupBy": pod_label},
        f"{rule.where}.metricsQuery",
    )
    return _finish(query), pod_label


def render_object_query(
    resolved: ResolvedMetric,
    namespace: str,
    object_kind: str,
    object_api_version: str,
    object_name: str,
    metric_selector: object,
) -> str:
    """The query for an ``Object`` metric describing one namespaced object.

    Upstream: metricsQuery.Build with a single name (``label="name"``) grouped by that label.

    Raises
    ------
    AdapterLookupError
        The rule maps no label to the object's kind or to namespaces.
    """
    rule = resolved.rule
    group = object_api_version.split("/", 1)[0] if "/" in object_api_version else ""
    resource = GroupResource(group, _singular(object_kind))
    object_label = label_for_resource(rule, resource)
    exprs = label_matchers(_requirements(metric_selector))
    if resource != NAMESPACE:
        exprs.append(f"{label_for_resource(rule, NAMESPACE)}={_quote(namespace)}")
    exprs.append(f"{object_label}={_quote(object_name)}")
    query = _render(
        rule.metrics_query,
        {"Series": resolved.series, "LabelMatchers": ",".join(exprs), "GroupBy": object_label},
        f"{rule.where}.metricsQuery",
    )
    return _finish(query)


def render_external_query(resolved: ResolvedMetric, namespace: str, metric_selector: object) -> str:
    """The query for an ``External`` metric.

    Upstream: metricsQuery.BuildExternal — the selector's matchers, then the namespace label
    unless the rule says ``resources.namespaced: false``; ``<<.GroupBy>>`` is empty.

    Raises
    ------
    AdapterLookupError
        A namespaced rule maps no label to namespaces.
    """
    rule = resolved.rule
    exprs = label_matchers(_requirements(metric_selector))
    if rule.namespaced:
        exprs.append(f"{label_for_resource(rule, NAMESPACE)}={_quote(namespace)}")
    query = _render(
        rule.metrics_query,
        {"Series": resolved.series, "LabelMatchers": ",".join(exprs), "GroupBy": ""},
        f"{rule.where}.metricsQuery",
    )
    return _finish(query)


def _requirements(selector: object) -> list[Requirement]:
    try:
        return selector_requirements(selector)
    except ValueError as exc:
        raise AdapterLookupError(str(exc)) from exc
