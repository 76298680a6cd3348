"""JSON from outside: hostile documents are a MalformedJson (a ValueError) with a code."""
from __future__ import annotations

import pytest

from gateway.core import json_input

REFUSED = [
    ("[" * 100_000, "malformed_json"),
    ('{"a":' * 100_000, "malformed_json"),
    ("[" * 65 + "]" * 65, "malformed_json"),
    ('{"a": ' * 64 + "[]" + "}" * 64, "malformed_json"),
    ("[1,", "malformed_json"),
    (b"\xff\xfe[]", "malformed_json"),
    ("[" + "9" * 5000 + "]", "number_out_of_range"),
    ("[9223372036854775808]", "number_out_of_range"),
    ("[-9223372036854775809]", "number_out_of_range"),
    ("[1e999]", "number_out_of_range"),
    ("[NaN]", "number_out_of_range"),
    ("[-Infinity]", "number_out_of_range"),
]


def nested_lists(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def nested_objects(levels: int) -> dict:
    value: dict = {"a": []}  # the innermost list is one more level
    for _ in range(levels - 2):
        value = {"a": value}
    return value


ACCEPTED = [
    ("[" * 64 + "]" * 64, nested_lists(64)),  # exactly MAX_DEPTH levels
    ('{"a": ' * 63 + "[]" + "}" * 63, nested_objects(64)),
    ("[9223372036854775807, -9223372036854775808, 1.5e300, 0.1]",
     [9223372036854775807, -9223372036854775808, 1.5e300, 0.1]),
    ('"plain"', "plain"),
]


@pytest.mark.parametrize("raw,code", REFUSED, ids=range(len(REFUSED)))
def test_refused(raw, code):
    with pytest.raises(json_input.MalformedJson) as refused:
        json_input.loads(raw)
    assert refused.value.code == code
    assert isinstance(refused.value, ValueError)  # callers that caught json's ValueError still do


@pytest.mark.parametrize("raw,expected", ACCEPTED, ids=range(len(ACCEPTED)))
def test_accepted(raw, expected):
    assert json_input.loads(raw) == expected
