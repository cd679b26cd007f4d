"""`$include` and `$var`: turning a stored message into the query or stream it describes.

Raw views never expand; queries and streams do. Partial references (`#`, `#/a/b`) point
inside the message itself, read as JSON pointers over the message as published.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mizu_core.errors import InvalidMessage, UsageError, shorten
from mizu_core.message.uris import is_partial

INCLUDE = "$include"
VAR = "$var"
MAX_EXPANDED_NODES = 100_000


def _kept(key: str) -> bool:
    """Fields not walked: `$$name` escapes, and `$signatures` (validated to hold only keys
    and digests, so nothing to expand; and signing adds to it, which must not change what
    the expansion counts against its budget)."""
    return key.startswith("$$") or key == "$signatures"


def pointer_segments(ref: str) -> list[str]:
    """`#/a/b~1c` → ["a", "b/c"] (JSON pointer escapes)."""
    if ref == "#":
        return []
    return [s.replace("~1", "/").replace("~0", "~") for s in ref[2:].split("/")]


def child(value: Any, segment: str) -> Any:
    """The value under one path segment: a map's key, or a list's index in decimal;
    KeyError if there is none."""
    if type(value) is dict and segment in value:
        return value[segment]
    if type(value) is list and segment.isdigit() and int(segment) < len(value):
        return value[int(segment)]
    raise KeyError(segment)


def resolve_pointer(root: Any, ref: str) -> Any:
    """The value `ref` (a partial reference) names inside `root`; KeyError if none."""
    value = root
    for seg in pointer_segments(ref):
        try:
            value = child(value, seg)
        except KeyError:
            raise KeyError(ref) from None
    return value


def expand_includes(
    root: dict[str, Any], resolve_external: Callable[[str], Any] | None = None
) -> dict[str, Any]:
    """Inline every `$include` of `root` (own fields win on a clash).

    External includes are left in place when no resolver is given, which is how
    publishing checks a message's internal includes for cycles.
    """
    budget = [MAX_EXPANDED_NODES]

    def walk(value: Any, active: tuple[str, ...]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise InvalidMessage(f"$include expansion exceeds {MAX_EXPANDED_NODES} values")
        t = type(value)
        if t is list:
            return [walk(v, active) for v in value]
        if t is not dict:
            return value
        if INCLUDE not in value:
            return {k: (v if _kept(k) else walk(v, active)) for k, v in value.items()}
        target_uri = value[INCLUDE]
        if target_uri in active:
            raise InvalidMessage(f"$include cycle through '{shorten(str(target_uri))}'")
        if is_partial(target_uri):
            try:
                target = resolve_pointer(root, target_uri)
            except KeyError:
                raise InvalidMessage(f"$include target '{shorten(str(target_uri))}' does not exist") from None
        elif resolve_external is not None:
            target = resolve_external(target_uri)
        else:
            return {k: (v if _kept(k) else walk(v, active)) for k, v in value.items()}
        included = walk(target, (*active, target_uri))
        if type(included) is not dict:
            raise InvalidMessage(f"$include target '{shorten(str(target_uri))}' is not an object")
        merged = dict(included)
        for k, v in value.items():
            if k != INCLUDE:
                merged[k] = v if _kept(k) else walk(v, active)
        return merged

    result: dict[str, Any] = walk(root, ())
    return result


def fill_vars(value: Any, params: dict[str, Any]) -> Any:
    """Replace every `{"$var": name}` by `params[name]`; a missing name is an error."""
    t = type(value)
    if t is list:
        return [fill_vars(v, params) for v in value]
    if t is not dict:
        return value
    if len(value) == 1 and VAR in value:
        name = value[VAR]
        if name not in params:
            raise UsageError(f"missing parameter '{name}'", hint=f"pass --param {name}=VALUE")
        return params[name]
    return {k: (v if k.startswith("$$") else fill_vars(v, params)) for k, v in value.items()}
