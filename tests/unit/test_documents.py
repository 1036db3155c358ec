"""The shared decoding policy: encodings, size caps, YAML aliases, duplicate keys, depth, huge numbers."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from ampscaler.documents import (
    MAX_DEPTH,
    MAX_RULE_BYTES,
    DocumentError,
    decode_text,
    load_json,
    load_yaml,
    load_yaml_documents,
    read_document_file,
)


def alias_bomb(levels: int = 9) -> str:
    """The "billion laughs" YAML: ~600 bytes that expand to 9**levels strings."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- decode_text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"\xef\xbb\xbf{}", "{}", id="utf8-bom-bytes-dropped"),
        pytest.param("\ufeff{}", "{}", id="bom-in-text-dropped"),
        pytest.param(b"caf\xc3\xa9", "café", id="utf8"),
        pytest.param("", "", id="empty"),
    ],
)
def test_decode_text_accepts_utf8_and_drops_one_bom(data: bytes | str, expected: str) -> None:
    assert decode_text(data, limit=100) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"\xff\xfe{\x00}\x00", "not valid UTF-8 (byte 0", id="utf16-is-not-utf8"),
        pytest.param(b"name: caf\xe9", "not valid UTF-8 (byte 9", id="latin1"),
        pytest.param("x\ud800y", "lone surrogate (character 1)", id="lone-surrogate-text"),
        pytest.param(b"x" * 101, "is 101 bytes; at most 100", id="over-the-cap-bytes"),
        pytest.param("é" * 60, "is 120 bytes; at most 100", id="cap-counts-utf8-bytes"),
        pytest.param("x" * 1000, "at least 1000 bytes", id="long-text-refused-before-encoding"),
    ],
)
def test_decode_text_refuses_bad_encodings_and_oversize(data: bytes | str, message: str) -> None:
    with pytest.raises(DocumentError, match=r"^the rule ") as info:
        decode_text(data, limit=100, what="rule")
    assert message in str(info.value)


def test_read_document_file_reads_at_most_the_cap(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_RULE_BYTES * 100))
    with pytest.raises(DocumentError, match=f"is {MAX_RULE_BYTES + 1} bytes; at most {MAX_RULE_BYTES}"):
        read_document_file(str(big), limit=MAX_RULE_BYTES)


@pytest.mark.parametrize("make", [lambda p: p, lambda p: p / "missing.json"], ids=["directory", "missing"])
def test_read_document_file_unreadable_is_oserror(tmp_path: Path, make: Any) -> None:
    with pytest.raises(OSError):
        read_document_file(str(make(tmp_path)), limit=100)


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('{"a": 1, "a": 2}', 'duplicate key "a"', id="duplicate-key"),
        pytest.param('{"x": {"a": 1, "b": {"a": 2, "a": 3}}}', 'duplicate key "a"', id="nested-duplicate"),
        pytest.param('{"a": NaN}', "NaN is not valid JSON", id="nan"),
        pytest.param('{"a": -Infinity}', "-Infinity is not valid JSON", id="infinity"),
        pytest.param('{"a": ' + "9" * 400 + "}", "400-digit integer is too large", id="400-digit-int"),
        pytest.param(
            '{"a": ' + "9" * 5000 + "}", "5000-digit integer is too large", id="past-python-int-limit"
        ),
        pytest.param("[" * 5000 + "]" * 5000, f"nested deeper than {MAX_DEPTH} levels", id="deep-arrays"),
        pytest.param('{"a":' * 3000 + "1" + "}" * 3000, "nested deeper than", id="deep-objects"),
        pytest.param('{"a": "\\ud800"}', "lone surrogate", id="escaped-lone-surrogate"),
        pytest.param('{"\\udfff": 1}', "lone surrogate", id="lone-surrogate-key"),
        pytest.param('{"a": 1', "invalid JSON at line 1 column 8", id="truncated"),
    ],
)
def test_load_json_refusals_are_document_errors(text: str, message: str) -> None:
    with pytest.raises(DocumentError) as info:
        load_json(text)
    assert message in str(info.value)


def test_load_json_brackets_inside_strings_do_not_count_as_depth() -> None:
    assert load_json('{"q": "' + "[" * 500 + '\\"{"}') == {"q": "[" * 500 + '"{'}


def test_load_json_accepts_depth_up_to_the_limit() -> None:
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_json(text) is not None
    with pytest.raises(DocumentError):
        load_json("[" + text + "]")


# --------------------------------------------------------------------------- YAML


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(alias_bomb(), "YAML anchors (&a0) are not allowed", id="billion-laughs"),
        pytest.param("a: &x 1\nb: 2\n", "YAML anchors (&x) are not allowed", id="unused-anchor"),
        pytest.param("a: *x\n", "YAML aliases (*x) are not allowed", id="alias-without-anchor"),
        pytest.param("a: {<<: {b: 1}, b: 2}\n", "merge keys (<<) are not allowed", id="merge-key"),
        pytest.param(
            "maxReplicas: 5\nmaxReplicas: 500\n", 'line 2 column 1: duplicate key "maxReplicas"', id="dup"
        ),
        pytest.param("a:\n  b: 1\n  b: 1\n", 'duplicate key "b"', id="nested-equal-duplicate"),
        pytest.param("1: a\n01: b\n", "duplicate key", id="duplicate-after-resolution"),
        pytest.param(
            "a: " + "[" * 5000 + "]" * 5000, f"nested deeper than {MAX_DEPTH} levels", id="deep-flow"
        ),
        pytest.param("".join("  " * i + "- \n" for i in range(200)), "nested deeper than", id="deep-block"),
        pytest.param("a: " + "9" * 400 + "\n", "400-digit integer is too large", id="400-digit-int"),
        pytest.param(
            "a: " + "9" * 5000 + "\n", "5000-digit integer is too large", id="past-python-int-limit"
        ),
        pytest.param('a: "\\ud800"\n', "lone surrogate", id="escaped-lone-surrogate"),
        pytest.param("a: b: c\n", "invalid YAML: line 1 column 5", id="syntax"),
        pytest.param("a: 2001-13-45\n", "invalid YAML", id="bad-timestamp"),
        pytest.param("\x00\x01\x02", "invalid YAML", id="binary"),
        pytest.param("? [a, b]\n: 1\n", "invalid YAML", id="unhashable-key"),
    ],
)
def test_load_yaml_refusals_are_document_errors(text: str, message: str) -> None:
    with pytest.raises(DocumentError) as info:
        load_yaml_documents(text)
    assert message in str(info.value)


def test_load_yaml_alias_bomb_is_refused_without_expanding_it() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(DocumentError):
            load_yaml(alias_bomb(12))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024


def test_load_yaml_keeps_ordinary_documents() -> None:
    assert load_yaml("\ufeffa: 1\nb: [x, {c: 2.5}]\n") == {"a": 1, "b": ["x", {"c": 2.5}]}
    assert load_yaml_documents("a: 1\n---\n---\nb: 2\n") == [{"a": 1}, None, {"b": 2}]


def test_load_yaml_several_documents_where_one_is_expected() -> None:
    with pytest.raises(DocumentError, match="expected one document, found 2"):
        load_yaml("a: 1\n---\nb: 2\n")
