"""Error collection for the rule parser: ``ErrorList``, JSON paths and bounded rendering of values."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, cast

from ampscaler.quantity import parse_quantity


def child_path(path: str, key: str) -> str:
    """``path.key``, or ``key`` at the root."""
    return f"{path}.{key}" if path else key


def index_path(path: str, index: int) -> str:
    """``path[index]``."""
    return f"{path}[{index}]"


SHOW_LIMIT: Final = 60
MAX_PATH_CHARS: Final = 200
# C0/C1 controls and the Unicode line/paragraph separators: they would break a log line.
_CONTROL_RE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape_control(match: re.Match[str]) -> str:
    return json.dumps(match.group())[1:-1]


def show(value: object, limit: int = SHOW_LIMIT) -> str:
    """A value as the user wrote it (JSON spelling), shortened to ``limit`` characters for messages.

    Renders piece by piece and stops once ``limit`` is reached, so the cost is bounded whatever
    the value (a whole document, a huge integer): never render all of it and shorten afterwards.
    """
    parts: list[str] = []
    _render(value, parts, limit + 1, 0)
    text = "".join(parts)
    # Lone surrogates cannot be printed or logged as UTF-8; show them escaped.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _render(value: object, parts: list[str], budget: int, depth: int) -> int:
    """Append the JSON spelling of ``value`` to ``parts`` until ``budget`` runs out; return what is left."""
    if budget <= 0:
        return 0
    if isinstance(value, Mapping | list | tuple) and depth < 20:
        is_map = isinstance(value, Mapping)
        parts.append("{" if is_map else "[")
        budget -= 1
        pairs = (
            cast(Mapping[object, object], value).items()
            if is_map
            else enumerate(cast(Sequence[object], value))
        )
        for index, (key, item) in enumerate(pairs):
            if budget <= 0:
                return 0
            if index:
                parts.append(", ")
                budget -= 2
            if is_map:
                budget = _render(key if isinstance(key, str) else str(key)[:budget], parts, budget, depth + 1)
                parts.append(": ")
                budget -= 2
            budget = _render(item, parts, budget, depth + 1)
        parts.append("}" if is_map else "]")
        return budget - 1
    piece = _scalar(value, budget)
    parts.append(piece[:budget])
    return budget - len(piece)


def _scalar(value: object, budget: int) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        if value.bit_length() > 200:
            # str() of an int is quadratic in its digits (and refused past 4300 digits).
            return f"<a {int(value.bit_length() * math.log10(2)) + 1}-digit integer>"
        return str(value)
    if isinstance(value, float):
        return json.dumps(value, allow_nan=True)
    if isinstance(value, str):
        return json.dumps(value[:budget], ensure_ascii=False)
    if isinstance(value, Mapping | list | tuple):
        return "..."
    return type(value).__name__


def json_type(value: object) -> str:
    """The JSON type name of a parsed value, for "must be X, got Y" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


class ErrorList:
    """Collects ``path: message (hint)`` strings; every check appends, nothing raises early."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str, hint: str | None = None) -> None:
        """Record one problem at ``path``.

        Paths hold the document's own keys, so the whole line is made printable and bounded: a
        key with a newline must not split one error into two log lines.
        """
        where = path or "(document)"
        if len(where) > MAX_PATH_CHARS:
            where = where[: MAX_PATH_CHARS - 3] + "..."
        line = f"{where}: {message}" + (f" ({hint})" if hint else "")
        self.items.append(_CONTROL_RE.sub(_escape_control, line))

    def __bool__(self) -> bool:
        return bool(self.items)

    def mapping(
        self,
        value: object,
        path: str,
        allowed: Sequence[str],
        required: Sequence[str] = (),
        required_hints: Mapping[str, str] | None = None,
    ) -> Mapping[str, Any] | None:
        """Check ``value`` is an object with only ``allowed`` keys and every ``required`` key.

        Unknown keys are errors with a "did you mean" hint (a typo must never silently turn a
        setting off). Returns the mapping, or None when it is not an object at all.
        """
        if not isinstance(value, Mapping):
            self.add(path, f"must be an object, got {json_type(value)}")
            return None
        for key in value:
            if not isinstance(key, str):
                self.add(path, f"keys must be strings, got {show(key)}")
            elif key not in allowed:
                self.add(child_path(path, key), "unknown field", suggest(key, allowed))
        for key in required:
            if key not in value:
                hint = (required_hints or {}).get(key)
                self.add(child_path(path, key), "required", hint)
        return cast(Mapping[str, Any], value)

    def integer(
        self, value: object, path: str, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        """An integer within [minimum, maximum]; integral floats (3.0) count, as in JSON Schema."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(path, f"must be an integer, got {show(value)}", _string_number_hint(value))
            return None
        if isinstance(value, float) and not value.is_integer():
            self.add(path, f"must be an integer, got {show(value)}")
            return None
        number = int(value)
        if minimum is not None and number < minimum:
            self.add(path, _range_message(minimum, maximum, value))
            return None
        if maximum is not None and number > maximum:
            self.add(path, _range_message(minimum, maximum, value))
            return None
        return number

    def number(
        self,
        value: object,
        path: str,
        *,
        positive: bool = False,
        minimum: float | None = None,
        below: float | None = None,
        maximum: float | None = None,
    ) -> float | None:
        """A finite number; ``positive`` means > 0, ``minimum``/``maximum`` inclusive, ``below`` exclusive.

        Integers too large for a float (``10**400``) are out of range, not a crash.
        """
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            kind = "a positive number" if positive else "a number"
            if isinstance(value, int) and not isinstance(value, bool):
                self.add(path, f"must be a number a float can hold, got {show(value)}")
            else:
                self.add(path, f"must be {kind}, got {show(value)}", _string_number_hint(value))
            return None
        if positive and value <= 0:
            self.add(path, f"must be a positive number, got {show(value)}")
            return None
        within = (
            (minimum is None or value >= minimum)
            and (below is None or value < below)
            and (maximum is None or value <= maximum)
        )
        if not within:
            self.add(path, f"must be {_span(positive, minimum, below, maximum)}, got {show(value)}")
            return None
        return float(value)

    def string(
        self,
        value: object,
        path: str,
        pattern: re.Pattern[str] | None = None,
        max_length: int | None = None,
        hint: str | None = None,
    ) -> str | None:
        """A non-empty string, optionally matching ``pattern`` and at most ``max_length`` long."""
        if not isinstance(value, str):
            self.add(path, f"must be a string, got {json_type(value)}")
            return None
        if not value.strip():
            self.add(path, "must not be empty", hint)
            return None
        if max_length is not None and len(value) > max_length:
            self.add(path, f"must be at most {max_length} characters, got {len(value)}")
            return None
        # fullmatch: "$" also matches before a trailing newline, so "web\n" passed ^...$ and failed later.
        if pattern is not None and not pattern.fullmatch(value):
            self.add(path, f"invalid value {show(value)}", hint)
            return None
        return value

    def boolean(self, value: object, path: str) -> bool | None:
        """true or false (not "true", not 1)."""
        if not isinstance(value, bool):
            self.add(path, f"must be true or false, got {show(value)}")
            return None
        return value

    def choice(self, value: object, path: str, choices: Sequence[str]) -> str | None:
        """One of ``choices`` exactly (case-sensitive, as the API server)."""
        if isinstance(value, str) and value in choices:
            return value
        hint = suggest(value, choices) if isinstance(value, str) else None
        # The message already lists the choices; only a "did you mean" adds anything.
        if hint is not None and not hint.startswith("did you mean"):
            hint = None
        self.add(path, f"must be one of {', '.join(choices)}, got {show(value)}", hint)
        return None


def _span(positive: bool, minimum: float | None, below: float | None, maximum: float | None) -> str:
    """The allowed range in words: "between 1e-06 and 1e+15", ">= 0 and < 1", "a positive number"."""
    if minimum is not None and maximum is not None and below is None:
        return f"between {minimum:g} and {maximum:g}"
    lower = f">= {minimum:g}" if minimum is not None else ("> 0" if positive else None)
    upper = f"< {below:g}" if below is not None else (f"<= {maximum:g}" if maximum is not None else None)
    if upper is None:
        return "a positive number" if minimum is None and positive else f"{lower}"
    return " and ".join(x for x in (lower, upper) if x)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float range
        return False


def suggest(word: str, candidates: Iterable[str]) -> str:
    """A "did you mean" hint for ``word`` among ``candidates`` (case-insensitive), or the full list."""
    options = list(candidates)
    lowered = {c.lower().replace("_", "").replace("-", ""): c for c in options}
    key = word.lower().replace("_", "").replace("-", "")
    if key in lowered:
        return f'did you mean "{lowered[key]}"?'
    close = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.6)
    if close:
        return f'did you mean "{lowered[close[0]]}"?'
    return "expected one of: " + ", ".join(options)


def _range_message(minimum: int | None, maximum: int | None, value: object) -> str:
    if minimum is not None and maximum is not None:
        return f"must be between {minimum} and {maximum}, got {show(value)}"
    if minimum is not None:
        return f"must be >= {minimum}, got {show(value)}"
    return f"must be <= {maximum}, got {show(value)}"


def _string_number_hint(value: object) -> str | None:
    """Hint for numbers written as strings, including Kubernetes quantities such as "500m"."""
    if not isinstance(value, str):
        return None
    try:
        number = parse_quantity(value)
    except ValueError:
        return None
    return f"write a plain JSON number without quotes: {number:g}"
