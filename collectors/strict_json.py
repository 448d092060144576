"""Strict JSON for bodies that come from the network: refuse what Python's ``json`` lets through.

Python's ``json.loads`` accepts ``NaN``, ``Infinity`` and ``-Infinity`` (and turns ``1e400`` into
``inf``), keeps the last of two duplicate keys without a word, and recurses once per nesting level
until it raises ``RecursionError``. None of that may reach the NOC's state. :func:`loads` refuses,
with a :class:`~core.errors.ReportError` whose message says what was wrong:

* a key given twice in one object (which of the two did the sender mean?);
* an object with more keys than ``max_keys``;
* nesting deeper than ``max_depth``, checked *before* parsing in linear passes over the text, so
  a hostile body never reaches the recursive parser;
* a body that is not UTF-8.

Non-finite numbers, spelled (``NaN``) or overflowing (``1e400``), are parsed into
:class:`NonFinite` markers and counted: a marker is no JSON type, so schema validation refuses it
*with the path of the field*, which a parse error could not name. The count lets a caller refuse
a marker the schema did not reach.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from core.errors import ReportError

# A string, or an unterminated one running to the end: possessive, so a body of many \" is scanned
# once, not once per quote (which would take hours on 4 MB).
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def nesting_depth_within(text: str, max_depth: int) -> bool:
    """False when an array or object in ``text`` may nest deeper than ``max_depth`` levels.

    Strings are removed first (a bracket inside a string is text), then everything but brackets;
    each pass deletes the innermost ``[]``/``{}`` pairs. Well-nested input of depth d is empty
    after d passes. Brackets that stop pairing up are a syntax error the parser reports itself,
    unless there are more of them than ``max_depth`` (then they could nest that deep unclosed).
    Every step is a linear pass in C.
    """
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", text))
    for _ in range(max_depth):
        if not brackets:
            return True
        shorter = brackets.replace("[]", "").replace("{}", "")
        if shorter == brackets:  # unbalanced or mismatched: nothing more pairs up
            return len(brackets) <= max_depth
        brackets = shorter
    return not brackets


class NonFinite:
    """Where the body held ``NaN``, ``Infinity`` or a number too large for a float."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text[:40]

    def __repr__(self) -> str:
        return f"{self.text} (not a finite number)"


def loads(raw: bytes, *, max_depth: int, max_keys: int) -> tuple[Any, int]:
    """Parse ``raw`` as strict JSON in UTF-8 (see the module docstring): the document and how many
    non-finite numbers it held; raise :class:`ReportError` for everything else refused.

    The body is decoded as UTF-8 first, so the depth check and the parser read the same text
    (``json.loads`` on bytes would also take UTF-16 and UTF-32, which the check would misread)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReportError(f"body is not UTF-8 text: {exc}") from exc
    if not nesting_depth_within(text, max_depth):
        raise ReportError(f"the body nests arrays or objects deeper than {max_depth} levels, or leaves that many "
                          "unclosed; no valid report does")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if len(items) > max_keys:
            raise ReportError(f"an object has {len(items)} keys; no object in a report has more than {max_keys}")
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ReportError(f"the key {key[:64]!r} appears twice in one object; send each field once")
            out[key] = value
        return out

    non_finite: list[NonFinite] = []

    def number(text: str) -> float | NonFinite:
        value = float(text)
        if math.isfinite(value):
            return value
        non_finite.append(NonFinite(text))
        return non_finite[-1]

    try:
        doc = json.loads(text, parse_float=number, parse_constant=number, object_pairs_hook=pairs)
    except RecursionError as exc:  # the pre-check should make this unreachable
        raise ReportError("the body nests too deeply to parse") from exc
    except ValueError as exc:
        raise ReportError(f"body is not valid JSON: {exc}") from exc
    return doc, len(non_finite)
