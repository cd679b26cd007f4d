"""The update view (SPEC §5): a message merged with all its `$prev` ancestors.

Every field is the union of the values the messages of the chain give it, so merging is
commutative, associative and idempotent. Values are compared by their canonical encoding;
arrays are sets and flatten into the union; a one-element union prints as a scalar.
`$prev` and `$signatures` describe single messages, not the merged state, and are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mizu_core.errors import MissingAncestor
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.message.uris import parse_static

_OMITTED = frozenset(("$prev", "$signatures"))


def prev_cids(message: dict[str, Any]) -> list[CID]:
    """The messages that `message` names in `$prev` (already validated on publish)."""
    value = message.get("$prev")
    if value is None:
        return []
    out = []
    for item in value if type(value) is list else [value]:
        if type(item) is dict:
            item = item.get("$ref")
        ref = parse_static(item) if type(item) is str else None
        if ref is not None:
            out.append(ref.cid.to_v1())
    return out


@dataclass(frozen=True)
class UpdateView:
    cid: CID
    value: dict[str, Any]
    chain: tuple[CID, ...]  # the message and every ancestor, nearest first


def update_view(cid: CID, fetch: Callable[[CID], dict[str, Any] | None]) -> UpdateView:
    chain: list[CID] = []
    seen = {cid}
    queue = [cid]
    fields: dict[str, dict[bytes, Any]] = {}
    while queue:
        current = queue.pop(0)
        message = fetch(current)
        if message is None:
            raise MissingAncestor(
                f"ancestor {current} of {cid} is not in the repository", current,
                hint="add a remote that holds it (mizu remote add), or pull it",
            )
        chain.append(current)
        for key, value in message.items():
            if key in _OMITTED or value is None:
                continue
            union = fields.setdefault(key, {})
            for element in _flatten(value):
                union[codec.encode(element)] = element
        for parent in prev_cids(message):
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    merged: dict[str, Any] = {}
    for key, union in fields.items():
        if not union:
            continue
        values = [union[k] for k in sorted(union)]
        merged[key] = values[0] if len(values) == 1 else values
    return UpdateView(cid, merged, tuple(chain))


def _flatten(value: Any) -> list[Any]:
    if type(value) is not list:
        return [value]
    out: list[Any] = []
    for v in value:
        if v is not None:
            out.extend(_flatten(v))
    return out
