"""Decoding untrusted JSON/YAML documents with bounded cost: one policy for every reader.

Rules come from many teams through ssm:PutParameter, decide inputs and import manifests from
files; all of them are read through here so the CLI, ``decide`` and the Lambda's SSM loader agree
on what a document is. The policy:

* text is strict UTF-8; one leading byte-order mark is dropped (as YAML itself does);
* a size cap per kind of document (a rule: 8 KiB, the SSM advanced-parameter limit);
* YAML aliases and anchors are refused: expanding them is how a 600-byte "billion laughs"
  document becomes gigabytes, and rules have no use for them;
* nesting deeper than ``MAX_DEPTH`` is refused before any recursive code sees it;
* a key repeated in one object is refused (JSON and YAML): silently keeping the last value
  turned ``maxReplicas: 5`` ... ``maxReplicas: 500`` into 500;
* integers longer than ``MAX_INT_DIGITS`` digits, ``NaN``/``Infinity`` JSON constants and strings
  holding lone UTF-16 surrogates are refused.

Every refusal is a ``DocumentError`` with a one-line message; nothing else escapes.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Hashable, Iterator
from typing import Any, Final

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode

BOM: Final = "\ufeff"
# SSM's advanced tier holds 8 KB per parameter (standard 4 KB): a rule can never be larger.
MAX_RULE_BYTES: Final = 8 * 1024
# A rule file may hold several rules; each is still checked against MAX_RULE_BYTES when pushed.
MAX_RULE_FILE_BYTES: Final = 1024 * 1024
# A decide input carries one rule plus pods and state: generous, still bounded.
MAX_DECIDE_INPUT_BYTES: Final = 4 * 1024 * 1024
# `kubectl get hpa,scaledobjects -A -o yaml` of a large cluster.
MAX_MANIFEST_BYTES: Final = 32 * 1024 * 1024
# A rule nests 6 levels, a decide input 8, a Kubernetes manifest rarely 20.
MAX_DEPTH: Final = 64
# 1e15 is the largest number a rule accepts; 40 digits leaves room for any honest spelling.
MAX_INT_DIGITS: Final = 40


class DocumentError(ValueError):
    """A document was refused before or while decoding; ``str(exc)`` is a one-line reason."""


def decode_text(data: bytes | str, *, limit: int, what: str = "document") -> str:
    """The document's text under the shared policy: strict UTF-8, one BOM dropped, at most ``limit`` bytes.

    Parameters
    ----------
    data
        Raw bytes (a file, stdin) or text already decoded (an SSM parameter value).
    limit
        Maximum size in bytes of the UTF-8 encoding.
    what
        What the document is, for messages ("rule", "decide input").

    Returns
    -------
    str
        The text without a leading byte-order mark.

    Raises
    ------
    DocumentError
        Invalid UTF-8, lone surrogates, or more than ``limit`` bytes.
    """
    if isinstance(data, bytes):
        size = len(data)
        if size > limit:
            raise DocumentError(f"the {what} is {size} bytes; at most {limit} are allowed")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentError(
                f"the {what} is not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r})"
            ) from None
    else:
        text = data
        # Cheap bound before encoding: a str never encodes to fewer bytes than characters.
        if len(text) > limit:
            raise DocumentError(f"the {what} is at least {len(text)} bytes; at most {limit} are allowed")
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise DocumentError(
                f"the {what} holds a lone surrogate (character {exc.start}); it is not valid Unicode"
            ) from None
        if size > limit:
            raise DocumentError(f"the {what} is {size} bytes; at most {limit} are allowed")
    return text[1:] if text.startswith(BOM) else text


def read_document_file(path: str, *, limit: int, what: str = "file") -> str:
    """Read and decode a file (``-`` is standard input) under the shared policy.

    Reads at most ``limit + 1`` bytes, so a huge or endless input costs no more than the cap.

    Raises
    ------
    DocumentError
        As ``decode_text``.
    OSError
        When the file cannot be read (missing, a directory, no permission).
    """
    if path == "-":
        data = sys.stdin.buffer.read(limit + 1)
    else:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    return decode_text(data, limit=limit, what=what)


# --------------------------------------------------------------------------- JSON

_JSON_STRING_RE: Final = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_RE: Final = re.compile(r"[\[\]{}]")


def _check_json_depth(text: str, max_depth: int) -> None:
    # The C decoder recurses per level; count brackets outside strings first so a
    # "[[[[...]]]]" document is refused in linear time instead of by RecursionError.
    depth = 0
    for match in _BRACKET_RE.finditer(_JSON_STRING_RE.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > max_depth:
                raise DocumentError(f"nested deeper than {max_depth} levels")
        else:
            depth -= 1


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DocumentError(f"duplicate key {_short(key)}")
        result[key] = value
    return result


def _json_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise DocumentError(f"a {digits}-digit integer is too large (at most {MAX_INT_DIGITS} digits)")
    return int(text)


def _json_constant(name: str) -> Any:
    raise DocumentError(f"{name} is not valid JSON (numbers must be finite)")


def load_json(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode one JSON document under the policy (no duplicate keys, no NaN, bounded depth and ints).

    Raises
    ------
    DocumentError
        With ``invalid JSON at line L column C: reason`` for syntax errors, or the policy's reason.
    """
    _check_json_depth(text, max_depth)
    try:
        value = json.loads(
            text, object_pairs_hook=_json_pairs, parse_int=_json_int, parse_constant=_json_constant
        )
    except DocumentError:
        raise
    except json.JSONDecodeError as exc:
        raise DocumentError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # defensive: the checks above should catch these
        raise DocumentError(f"invalid JSON: {_short(str(exc))}") from None
    _check_strings(value)
    return value


# --------------------------------------------------------------------------- YAML


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases/anchors, duplicate keys, deep nesting and huge ints."""

    max_depth = MAX_DEPTH

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        """Upstream ``Composer.compose_node`` with aliases, anchors and depth refused."""
        if self.check_event(AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise ComposerError(
                None,
                None,
                f"YAML aliases (*{event.anchor}) are not allowed in ampscaler documents; write the value out",
                event.start_mark,
            )
        event = self.peek_event()  # type: ignore[no-untyped-call]
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise ComposerError(
                None,
                None,
                f"YAML anchors (&{anchor}) are not allowed in ampscaler documents; write the value out",
                event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise ComposerError(
                    None, None, f"nested deeper than {self.max_depth} levels", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Upstream ``BaseConstructor.construct_mapping``, refusing repeated keys and merge keys.

        PyYAML keeps the last of two equal keys silently; a merge key (``<<``) would let a later
        key override a merged one just as silently.
        """
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, f"expected a mapping, found {node.id}", node.start_mark)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConstructorError(
                    None,
                    None,
                    "YAML merge keys (<<) are not allowed; write the keys out",
                    key_node.start_mark,
                )
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                raise ConstructorError(None, None, "found an unhashable key", key_node.start_mark)
            if key in mapping:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key {_short(str(key_node.value) if isinstance(key_node, ScalarNode) else key_node.id)}",
                    key_node.start_mark,
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_yaml_int(self, node: ScalarNode) -> int:
        """Refuse integers too long to be an honest number before ``int()`` spends time on them."""
        digits = len(str(node.value).replace("_", "").lstrip("+-"))
        if digits > MAX_INT_DIGITS:
            raise ConstructorError(
                None,
                None,
                f"a {digits}-digit integer is too large (at most {MAX_INT_DIGITS} digits)",
                node.start_mark,
            )
        return SafeConstructor.construct_yaml_int(self, node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)
# SafeLoader's mapping constructors call self.construct_mapping, so the override applies to them.


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"line {mark.line + 1} column {mark.column + 1}: {problem}"
    return _short(str(problem), 200)


def _yaml_documents(text: str) -> Iterator[Any]:
    loader = _BoundedLoader(text)
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            yield loader.get_data()
    finally:
        loader.dispose()


def load_yaml_documents(text: str) -> list[Any]:
    """Every document in a YAML stream under the policy (empty documents included as None).

    Raises
    ------
    DocumentError
        ``invalid YAML: line L column C: reason``.
    """
    try:
        documents = list(_yaml_documents(text))
    except yaml.YAMLError as exc:
        raise DocumentError(f"invalid YAML: {_yaml_message(exc)}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        # PyYAML constructors raise plain ValueError on some malformed scalars (e.g. timestamps).
        raise DocumentError(f"invalid YAML: {_short(str(exc), 200)}") from None
    for document in documents:
        _check_strings(document)
    return documents


def load_yaml(text: str) -> Any:
    """The single document of a YAML text (None when empty).

    Raises
    ------
    DocumentError
        Invalid YAML, a policy refusal, or more than one document.
    """
    documents = load_yaml_documents(text)
    if len(documents) > 1:
        raise DocumentError(f"invalid YAML: expected one document, found {len(documents)}")
    return documents[0] if documents else None


# --------------------------------------------------------------------------- shared


def _check_strings(value: object) -> None:
    """Refuse strings holding lone surrogates (JSON ``"\\ud800"``): they cannot be printed or stored."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                raise DocumentError(
                    f"the string {_short(item)} holds a lone surrogate; it is not valid Unicode"
                )
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(text: str, limit: int = 40) -> str:
    """``text`` quoted and cut to ``limit`` characters, lone surrogates escaped so it prints."""
    quoted = json.dumps(text[:limit] + ("..." if len(text) > limit else ""), ensure_ascii=False)
    return quoted.encode("utf-8", "backslashreplace").decode("utf-8")
