"""Canonical DAG-CBOR and the JSON edge.

Messages are Python values (dict, list, str, int, float, bool, None, bytes, CID). `encode`
writes canonical DAG-CBOR (keys length-first then bytewise, shortest integer heads, 64-bit
floats); `decode` accepts only bytes that `encode` would write back identically, which makes
every received block canonical by construction. `from_json`/`to_json` map DAG-JSON's
`{"/": cid}` links and `{"/": {"bytes": …}}` byte strings.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from typing import Any

import cbor2

from mizu_core.errors import InvalidMessage, shorten
from mizu_core.message.cid import CID
from mizu_core.speedups import native

MAX_DEPTH = 256
MAX_MESSAGE_SIZE = 1 << 20
_UINT64 = 1 << 64

_pack_double = struct.Struct(">Bd").pack
_key_cache: dict[str, bytes] = {}


_SMALL_HEADS = [[bytes((major << 5 | n,)) for n in range(24)] for major in range(8)]


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return _SMALL_HEADS[major][n]
    if n < 0x100:
        return bytes((major << 5 | 24, n))
    if n < 0x10000:
        return bytes((major << 5 | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((major << 5 | 26,)) + n.to_bytes(4, "big")
    return bytes((major << 5 | 27,)) + n.to_bytes(8, "big")


head = _head  # for writers of fixed-shape blocks (prolly tree nodes)


def _encoded_key(key: str) -> bytes:
    encoded = _key_cache.get(key)
    if encoded is None:
        raw = key.encode("utf-8")
        encoded = _head(3, len(raw)) + raw
        if len(_key_cache) < 100_000:
            _key_cache[key] = encoded
    return encoded


def _sort_key(item: tuple[bytes, Any]) -> tuple[int, bytes]:
    return (len(item[0]), item[0])


def _encode(value: Any, out: bytearray, depth: int) -> None:
    t = type(value)
    if t is str:
        raw = value.encode("utf-8")
        out += _head(3, len(raw))
        out += raw
    elif t is dict:
        if depth >= MAX_DEPTH:
            raise InvalidMessage(f"nesting deeper than {MAX_DEPTH} levels")
        out += _head(5, len(value))
        items = []
        for k, v in value.items():
            if type(k) is not str:
                raise InvalidMessage(f"map key {shorten(repr(k))} is not a string")
            items.append((_encoded_key(k), v))
        items.sort(key=_sort_key)
        for k, v in items:
            out += k
            _encode(v, out, depth + 1)
    elif t is int:
        if value >= 0:
            if value >= _UINT64:
                raise InvalidMessage(f"integer {value} does not fit in 64 bits")
            out += _head(0, value)
        else:
            if value < -_UINT64:
                raise InvalidMessage(f"integer {value} does not fit in 64 bits")
            out += _head(1, -1 - value)
    elif t is list:
        if depth >= MAX_DEPTH:
            raise InvalidMessage(f"nesting deeper than {MAX_DEPTH} levels")
        out += _head(4, len(value))
        for v in value:
            _encode(v, out, depth + 1)
    elif t is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidMessage("NaN and infinite numbers cannot be stored")
        out += _pack_double(0xFB, value)
    elif t is bool:
        out.append(0xF5 if value else 0xF4)
    elif value is None:
        out.append(0xF6)
    elif t is bytes:
        out += _head(2, len(value))
        out += value
    elif t is CID:
        raw = b"\0" + value.raw
        out += b"\xd8\x2a"
        out += _head(2, len(raw))
        out += raw
    else:
        raise InvalidMessage(f"value of type {t.__name__} cannot be stored")


def _encode_python(value: Any, depth: int = 0) -> bytes:
    out = bytearray()
    _encode(value, out, depth)
    return bytes(out)


# The C encoder writes the same bytes and refuses the same values (tests compare them).
_encode_value: Callable[..., bytes] = (
    native.Encoder(CID, InvalidMessage) if native is not None else _encode_python
)


def encode(value: Any) -> bytes:
    """Canonical DAG-CBOR encoding of `value`."""
    try:
        return _encode_value(value)
    except UnicodeEncodeError:
        raise InvalidMessage("text contains a lone surrogate (not valid Unicode)") from None


def _tag_hook(tag: Any, *_: Any) -> Any:
    if tag.tag != 42:
        raise InvalidMessage(f"CBOR tag {tag.tag} is not allowed in DAG-CBOR")
    value = tag.value
    if type(value) is not bytes or not value.startswith(b"\0"):
        raise InvalidMessage("malformed CID link (tag 42)")
    try:
        return CID(value[1:])
    except ValueError as e:
        raise InvalidMessage(str(e)) from None


def decode_trusted(data: bytes) -> Any:
    """Decode a block this process encoded or already verified (no canonical re-check)."""
    return cbor2.loads(data, tag_hook=_tag_hook)


def decode(data: bytes) -> Any:
    """Decode canonical DAG-CBOR; anything non-canonical or non-IPLD raises InvalidMessage."""
    try:
        value = cbor2.loads(
            data, tag_hook=_tag_hook, max_depth=MAX_DEPTH + 1,
            allow_indefinite=False, allow_duplicate_keys=False,
        )
    except InvalidMessage:
        raise
    except Exception as e:  # cbor2 raises many types on garbage input
        if isinstance(e.__cause__, InvalidMessage):  # a tag hook's reason, wrapped by cbor2
            raise e.__cause__ from None
        raise InvalidMessage(f"not valid CBOR: {e}") from None
    if encode(value) != data:
        raise InvalidMessage("not canonical DAG-CBOR")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str | bytes, line: int | None = None, links: bool = False) -> Any:
    """Parse JSON text; errors carry line and column (`line` names a one-line document).

    With `links`, DAG-JSON links and bytes become CIDs and bytes as they are parsed.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidMessage(f"invalid UTF-8 at byte {e.start}") from None
    try:
        return (_LINKS_DECODER if links else _DECODER).decode(text)
    except json.JSONDecodeError as e:
        place = f"column {e.colno}" if line else f"line {e.lineno} column {e.colno}"
        raise InvalidMessage(f"invalid JSON at {place}: {e.msg}") from None
    except ValueError as e:
        raise InvalidMessage(f"invalid JSON: {e}") from None
    except RecursionError:
        raise InvalidMessage(f"nesting deeper than {MAX_DEPTH} levels") from None


def _link_or_dict(obj: dict[str, Any]) -> Any:
    if "/" in obj and len(obj) == 1:
        return from_json(obj)
    return obj


# Made once: json.loads with options builds a decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_LINKS_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_hook=_link_or_dict)


def from_json(value: Any) -> Any:
    """Turn parsed JSON into IPLD values: `{"/": cid}` → CID, `{"/": {"bytes": b64}}` → bytes."""
    t = type(value)
    if t is dict:
        if len(value) == 1 and "/" in value:
            inner = value["/"]
            if type(inner) is str:
                try:
                    return CID.parse(inner)
                except ValueError as e:
                    raise InvalidMessage(f'link {{"/": "{shorten(inner)}"}}: {e}') from None
            if type(inner) is dict and len(inner) == 1 and type(inner.get("bytes")) is str:
                try:
                    return _b64decode(inner["bytes"])
                except ValueError:
                    raise InvalidMessage("bytes value is not base64") from None
        return {k: from_json(v) for k, v in value.items()}
    if t is list:
        return [from_json(v) for v in value]
    return value


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def to_json(value: Any) -> Any:
    """The DAG-JSON-shaped view of an IPLD value, ready for `json.dumps`."""
    t = type(value)
    if t is dict:
        return {k: to_json(v) for k, v in value.items()}
    if t is list:
        return [to_json(v) for v in value]
    if t is CID:
        return {"/": str(value)}
    if t is bytes:
        return {"/": {"bytes": base64.b64encode(value).decode("ascii").rstrip("=")}}
    return value


def iter_links(value: Any) -> Any:
    """Yield every CID link inside an IPLD value."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is dict:
            stack.extend(v.values())
        elif t is list:
            stack.extend(v)
        elif t is CID:
            yield v
