"""Reserved `$` fields (SPEC §3): the checks every message passes on publish and on receipt.

`validate_message` walks the whole message once; `$$name` values are skipped unread. It
returns the root's signers so the store can record them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mizu_core.errors import InvalidMessage
from mizu_core.message import codec
from mizu_core.message.signatures import SIGNATURES, verify_signatures
from mizu_core.message.templates import INCLUDE, VAR, expand_includes
from mizu_core.message.uris import StaticRef, is_partial, parse_static
from mizu_core.speedups import native

if TYPE_CHECKING:
    from mizu_core.message.keys import PublicKey

SchemaLookup = Callable[[StaticRef], "dict[str, Any] | None"]


def _uri(value: Any, field: str, where: str, allow_partial: bool) -> StaticRef | None:
    if type(value) is not str:
        raise InvalidMessage(f"{field} at {where} must be a URI string")
    if allow_partial and is_partial(value):
        return None
    ref = parse_static(value)
    if ref is None:
        kinds = "a Mizu URI with a CID, or a partial one (#/…)" if allow_partial else "a Mizu URI"
        raise InvalidMessage(f"{field} at {where}: '{value}' is not {kinds}")
    return ref


def _check_prev(value: Any, where: str) -> None:
    for item in value if type(value) is list else [value]:
        if type(item) is dict and set(item) == {"$ref"}:
            item = item["$ref"]
        ref = _uri(item, "$prev", where, allow_partial=False)
        if ref is not None and ref.action == "ipfs":
            raise InvalidMessage(f"$prev at {where} must name a message, not an ipfs:// file")
    if type(value) is list and not value:
        raise InvalidMessage(f"$prev at {where} is an empty list")


def _check_schema(
    obj: dict[str, Any], value: Any, where: str, lookup: SchemaLookup | None
) -> None:
    ref = _uri(value, "$schema", where, allow_partial=False)
    assert ref is not None
    schema_message = lookup(ref) if lookup else None
    if schema_message is None:
        raise InvalidMessage(f"$schema at {where}: schema message {ref.cid} is not in the repository")
    if schema_message.get("kind") != "json-schema" or type(schema_message.get("schema")) is not dict:
        raise InvalidMessage(f"$schema at {where}: {ref.cid} is not a json-schema message")
    import jsonschema  # only messages that name a schema pay for this import

    try:
        jsonschema.validate(codec.to_json(obj), schema_message["schema"])
    except jsonschema.ValidationError as e:
        path = "/".join(str(p) for p in e.absolute_path)
        raise InvalidMessage(f"does not conform to schema {ref.cid} at {where}{path}: {e.message}") from None
    except jsonschema.SchemaError as e:
        raise InvalidMessage(f"schema {ref.cid} is not a valid JSON schema: {e.message}") from None


def validate_message(
    message: Any, schema_lookup: SchemaLookup | None = None
) -> list[PublicKey]:
    """Validate all reserved fields of `message`; return the keys that signed its root."""
    if type(message) is not dict:
        raise InvalidMessage("a message must be a JSON object")
    if "$ref" in message:
        raise InvalidMessage("a message cannot itself be a $ref pointer")
    if native is not None and not native.has_reserved(message):
        return []  # no reserved field anywhere (most messages): nothing more to check
    walk = _Walk(message, schema_lookup)
    walk.node(message, "/")
    if walk.has_include:
        expand_includes(message)  # raises on a cycle or a dangling internal include
    return walk.root_signers


class _Walk:
    """One walk over a message (a class, not nested functions: those would make a
    reference cycle per message, left for the garbage collector)."""

    __slots__ = ("has_include", "message", "root_signers", "schema_lookup")

    def __init__(self, message: dict[str, Any], schema_lookup: SchemaLookup | None) -> None:
        self.message = message
        self.schema_lookup = schema_lookup
        self.root_signers: list[PublicKey] = []
        self.has_include = False

    def node(self, value: Any, where: str) -> None:
        """Check the reserved fields in `value`, a dict or a list (scalars hold none, so
        they are skipped without a call: most values are scalars)."""
        if type(value) is list:
            for i, v in enumerate(value):
                if type(v) is dict or type(v) is list:
                    self.node(v, f"{where}{i}/")
            return
        for key, v in value.items():
            if not key.startswith("$"):
                if type(v) is dict or type(v) is list:
                    self.node(v, f"{where}{key}/")
            elif key.startswith("$$"):
                continue
            elif key == SIGNATURES:
                signers = verify_signatures(value, where)
                if value is self.message:
                    self.root_signers.extend(signers)
            elif key == "$ref":
                if len(value) != 1:
                    raise InvalidMessage(f"the object holding $ref at {where} has other fields")
                _uri(v, "$ref", where, allow_partial=True)
            elif key == INCLUDE:
                _uri(v, INCLUDE, where, allow_partial=True)
                self.has_include = True
            elif key == "$prev":
                _check_prev(v, where)
            elif key == VAR:
                if len(value) != 1:
                    raise InvalidMessage(f"the object holding $var at {where} has other fields")
                if type(v) is not str or not v:
                    raise InvalidMessage(f"$var at {where} must be a non-empty string")
            elif key == "$schema":
                _check_schema(value, v, where, self.schema_lookup)
            else:
                raise InvalidMessage(f"unknown reserved field '{key}' at {where}")
