"""Reading rule documents: text and files decoded under the shared policy of ``ampscaler.documents``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from ampscaler.documents import (
    MAX_RULE_BYTES,
    MAX_RULE_FILE_BYTES,
    DocumentError,
    decode_text,
    load_json,
    load_yaml,
    load_yaml_documents,
    read_document_file,
)
from ampscaler.errors import RuleInvalidError


def load_rule_text(text: str | bytes, name: str | None = None) -> Any:
    """Decode one JSON or YAML rule document under the shared policy (``ampscaler.documents``).

    At most ``MAX_RULE_BYTES`` (SSM's 8 KiB), strict UTF-8 with one leading BOM dropped, no YAML
    aliases, no duplicate keys, bounded nesting.

    Raises
    ------
    RuleInvalidError
        ``(document): ...`` on any refusal, a syntax error or several YAML documents.
    """
    try:
        decoded = decode_text(text, limit=MAX_RULE_BYTES, what="rule")
        if decoded.lstrip().startswith(("{", "[")):
            try:
                return load_json(decoded)
            except DocumentError as json_error:
                # JSON-looking text may still be valid YAML flow style; report JSON if YAML fails too.
                try:
                    return load_yaml(decoded)
                except DocumentError:
                    raise json_error from None
        return load_yaml(decoded)
    except DocumentError as exc:
        raise RuleInvalidError([f"(document): {exc}"], name=name) from None


RULE_FILE_SUFFIXES: Final = (".json", ".yaml", ".yml")


def read_rule_documents(path: str | Path) -> list[Any]:
    """The raw documents in a rule file: one for .json, every non-empty document for .yaml/.yml.

    Raises
    ------
    RuleInvalidError
        When the suffix is unknown or the file does not decode (the message names the file).
    OSError
        When the file cannot be read.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in RULE_FILE_SUFFIXES:
        raise RuleInvalidError(
            [f"(file): unsupported suffix {suffix!r} (use .json, .yaml or .yml)"], name=str(file)
        )
    try:
        text = read_document_file(str(file), limit=MAX_RULE_FILE_BYTES, what="file")
        if suffix == ".json":
            return [load_json(text)]
        docs = [d for d in load_yaml_documents(text) if d is not None]
    except DocumentError as exc:
        raise RuleInvalidError([f"(document): {exc}"], name=str(file)) from None
    if not docs:
        raise RuleInvalidError(["(document): the file holds no rule"], name=str(file))
    return docs
