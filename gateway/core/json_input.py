"""JSON from outside (request bodies, JSON inside form fields, fetched documents), parsed
with limits, so hostile input is a ValueError and never a RecursionError or an overflow.

- Depth: at most ``MAX_DEPTH`` levels. Past Python's recursion limit ``json.loads``
  raises RecursionError (100 000 ``[`` did), and deep values strain every later
  walk of the document.
- Integers: at most 19 digits (checked before ``int()``, which is quadratic in the
  digits and refuses more than 4 300) and within 64 bits, what SQLite and BSON
  hold; ``10**23`` in a list of ids overflowed SQLite.
- Floats: finite (``1e999`` parses as inf); ``NaN`` and ``Infinity`` are not JSON.

The size is the caller's to bound (the app's ``client_max_size`` for bodies).
"""
from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


class MalformedJson(ValueError):
    code = "malformed_json"


class NumberOutOfRange(MalformedJson):
    code = "number_out_of_range"


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 19:
        raise NumberOutOfRange("integers must fit in 64 bits")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise NumberOutOfRange("integers must fit in 64 bits")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NumberOutOfRange("numbers must be finite")
    return value


def _constant(name: str) -> Any:
    raise NumberOutOfRange(f"{name} is not a JSON number")


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    stack = [(value, 1)]
    while stack:  # iterative: a recursive walk would fail on the very input it guards against
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def loads(raw: bytes | str) -> Any:
    """Like ``json.loads``; every refusal is a ``MalformedJson`` (a ValueError) with a ``code``."""
    try:
        value = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except MalformedJson:
        raise
    except RecursionError:
        raise MalformedJson(f"nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise MalformedJson("not valid JSON") from None
    if too_deep(value):
        raise MalformedJson(f"nested deeper than {MAX_DEPTH} levels")
    return value
