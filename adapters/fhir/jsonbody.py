"""Defensive JSON: bounded size and depth, strict UTF-8, no duplicate keys, no NaN.

``json.loads`` raises ``RecursionError`` on deep nesting and ``UnicodeDecodeError`` on bytes
that are not UTF-8; a server that catches only ``JSONDecodeError`` answers 500. Here every
failure is a ``FhirError`` (400/413), and size is bounded before anything is parsed.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.fhir.outcome import FhirError, Issue

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, d)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, d + 1) for c in children if isinstance(c, dict | list))
    return deepest


def too_large() -> FhirError:
    return FhirError(413, Issue("too-long", f"forespørselen er større enn {MAX_BYTES} byte",
                                reason="body_too_large"))


def parse(body: bytes) -> Any:
    """Raises: FhirError."""
    if len(body) > MAX_BYTES:
        raise too_large()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FhirError(400, Issue("structure", f"innholdet er ikke gyldig UTF-8 (byte "
                                   f"{exc.start})", reason="not_utf8")) from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates,
                           parse_constant=_no_constant)
    except RecursionError:
        raise FhirError(400, Issue("structure", f"JSON er nøstet dypere enn {MAX_DEPTH} nivåer",
                                   reason="too_deep")) from None
    except ValueError as exc:     # JSONDecodeError is one
        raise FhirError(400, Issue("structure", f"innholdet er ikke gyldig JSON: {exc}",
                                   reason="not_json")) from None
    if depth(value) > MAX_DEPTH:
        raise FhirError(400, Issue("structure", f"JSON er nøstet dypere enn {MAX_DEPTH} nivåer",
                                   reason="too_deep"))
    return value
