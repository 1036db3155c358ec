"""Hypothesis-generated rule, decide and import documents: every one is a correct answer or a clean error."""

from __future__ import annotations

import contextlib
import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampscaler.contract import DecideInputError, decide_document, dumps
from ampscaler.errors import RuleInvalidError
from ampscaler.importers import ImportInputError, import_manifests, load_adapter_config, load_manifests
from ampscaler.rule import parse_rule, rule_to_document
from tests.fuzz.corpus import DECIDE, GOOD_RULE, HPA
from tests.fuzz.harness import check_all

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**320),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 1e-9, 5e-324, 1.7e308, 2**31, 2**64]),
    st.text(max_size=20),
    st.sampled_from(["kube-system", "amazon-x", "web\n", "Pods", "Value", "500m", ""]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (the root excluded)."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in items:
        found.append((*prefix, key))
        found.extend(_paths(item, (*prefix, key)))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with a few values replaced, keys added or removed at random paths."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        *parent_path, key = draw(st.sampled_from(paths))
        parent = doc
        for part in parent_path:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[key] = draw(json_values)
        elif action == "delete" and isinstance(parent, dict):
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(json_values)
    return doc


def _text(doc: Any, as_yaml: bool) -> str:
    if as_yaml:
        return yaml.safe_dump(doc, allow_unicode=True)
    return json.dumps(doc)


@FUZZ
@given(mutated(GOOD_RULE), st.booleans())
def test_rule_document_is_a_rule_or_a_clean_error_and_valid_rules_round_trip(doc: Any, as_yaml: bool) -> None:
    try:
        text = _text(doc, as_yaml)
    except (ValueError, UnicodeEncodeError, OverflowError):
        return  # not representable as a document at all
    try:
        rule = parse_rule(text, name="fuzz")
    except RuleInvalidError as exc:
        assert exc.errors
        assert all("\n" not in e and len(e) < 2000 for e in exc.errors)
        return
    # A valid rule written back the way push writes it reads as the same rule.
    assert parse_rule(json.dumps(rule_to_document(rule)), name="fuzz") == rule


@FUZZ
@given(st.text(max_size=300))
def test_any_text_is_a_rule_or_a_clean_error(text: str) -> None:
    try:
        parse_rule(text, name="fuzz", default_cluster="c")
    except RuleInvalidError as exc:
        assert exc.errors and all("\n" not in e for e in exc.errors)


@FUZZ
@given(mutated(json.loads(DECIDE)))
def test_decide_document_is_a_decision_or_a_clean_error(doc: Any) -> None:
    try:
        output = decide_document(doc)
    except DecideInputError as exc:
        assert exc.errors
        return
    assert 0 <= output["desiredReplicas"] <= 2**31 - 1
    dumps(output)


@FUZZ
@given(mutated(yaml.safe_load(HPA)))
def test_import_manifest_converts_or_reports_never_an_internal_error(manifest: Any) -> None:
    try:
        manifests = load_manifests(yaml.safe_dump(manifest, allow_unicode=True))
    except ImportInputError:
        return
    except (ValueError, UnicodeEncodeError):
        return  # the mutation produced something YAML cannot write
    for result in import_manifests(manifests, cluster="prod"):
        assert not result.unexpected, [str(p) for p in result.problems]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_any_bytes_through_every_entry_point_are_answered_cleanly(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        crashes = [o for o in check_all(data, Path(tmp)) if not o.clean]
    assert not crashes, crashes


_IMPORT_FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "importers" / "fixtures"


def _fixture_documents(name: str) -> list[Any]:
    return [d for d in yaml.safe_load_all((_IMPORT_FIXTURES / name).read_text()) if d is not None]


@FUZZ
@given(
    st.sampled_from(
        [
            *_fixture_documents("hpa-cpu-legacy.yaml"),
            *_fixture_documents("php-apache-hpa.yaml"),
            *_fixture_documents("keda-scaledobjects.yaml"),
        ]
    ).flatmap(mutated)
)
def test_cpu_hpas_and_scaled_objects_convert_or_report_never_an_internal_error(manifest: Any) -> None:
    try:
        manifests = load_manifests(yaml.safe_dump(manifest, allow_unicode=True))
    except ImportInputError:
        return
    except (ValueError, UnicodeEncodeError):
        return
    for result in import_manifests(manifests, cluster="prod"):
        assert not result.unexpected, [str(p) for p in result.problems]
        if result.document is not None:
            parse_rule(result.document, default_cluster="prod")


@FUZZ
@given(
    st.sampled_from(
        [
            *_fixture_documents("adapter-helmrelease.yaml")[1:],
            *_fixture_documents("adapter-argocd.yaml"),
            *_fixture_documents("adapter-configmap.yaml"),
        ]
    ).flatmap(mutated)
)
def test_adapter_config_sources_load_or_refuse_cleanly(document: Any) -> None:
    try:
        text = yaml.safe_dump(document, allow_unicode=True)
    except (ValueError, UnicodeEncodeError):
        return
    with contextlib.suppress(ImportInputError):
        load_adapter_config(text)
