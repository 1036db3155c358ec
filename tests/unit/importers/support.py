"""Fixture files and the rule-parser check shared by the importer tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ampscaler.importers import ItemResult
from ampscaler.rule import lint_rule, parse_rule

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    """The text of one file under fixtures/."""
    return (FIXTURES / name).read_text()


def assert_valid_rule(document: dict[str, Any] | None) -> None:
    """The document parses as a rule and passes the semantic checks ``validate`` runs."""
    assert document is not None
    rule = parse_rule(document, default_cluster="prod")
    errors, _ = lint_rule(rule)
    assert errors == []


def by_name(results: list[ItemResult]) -> dict[str, ItemResult]:
    """Results keyed by manifest name."""
    return {r.ref.name: r for r in results}


def problems(result: ItemResult) -> list[tuple[str | None, str]]:
    """(path, reason) of every problem of one result."""
    return [(p.path, p.reason) for p in result.problems]
