"""Reserved `$` fields (SPEC §3): the checks every message passes on publish and on receipt.

`validate_message` walks the whole message once; `$$name` values are skipped unread. It
returns the root's signers so the store can record them.

It is the one judge of a message: `put` (before signing), `import`, a peer's blocks and
`fsck` all call it, so what one accepts the others accept. A put validates a message
before signing adds `$signatures` at its root, so no rule may depend on that field being
there: the root is never a `$ref` or `$var` placeholder (signing would add a field beside
it), a `$schema` judges the object without its `$signatures` (what the signatures sign),
and an `$include` never points into `$signatures`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mizu_core.errors import InvalidMessage, shorten
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.message.signatures import SIGNATURES, verify_signatures
from mizu_core.message.templates import INCLUDE, VAR, expand_includes, pointer_segments
from mizu_core.message.uris import StaticRef, is_partial, parse_static
from mizu_core.speedups import native

if TYPE_CHECKING:
    from mizu_core.message.keys import PublicKey

SchemaLookup = Callable[[StaticRef], "dict[str, Any] | None"]


class MissingSchema(InvalidMessage):
    """The schema message a `$schema` names is not here: put and import refuse the message
    (they cannot check it), fsck reports it as incomplete, not as corrupt."""

    def __init__(self, message: str, hint: str | None = None, cid: CID | None = None) -> None:
        super().__init__(message, hint)
        self.cid = cid


def _uri(value: Any, field: str, where: str, allow_partial: bool) -> StaticRef | None:
    if type(value) is not str:
        raise InvalidMessage(f"{field} at {where} must be a URI string")
    if allow_partial and is_partial(value):
        return None
    ref = parse_static(value)
    if ref is None:
        kinds = "a Mizu URI with a CID, or a partial one (#/…)" if allow_partial else "a Mizu URI"
        raise InvalidMessage(f"{field} at {where}: '{shorten(value)}' is not {kinds}")
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
    obj: dict[str, Any], value: Any, where: str, lookup: SchemaLookup | None,
    missing: list[CID] | None,
) -> None:
    ref = _uri(value, "$schema", where, allow_partial=False)
    assert ref is not None
    schema_message = lookup(ref) if lookup else None
    if schema_message is None:
        if missing is not None:  # the caller reports it (fsck) or checks again (import)
            missing.append(ref.cid.to_v1())
            return
        raise MissingSchema(
            f"$schema at {where}: schema message {ref.cid} is not in the repository", cid=ref.cid.to_v1()
        )
    if schema_message.get("kind") != "json-schema" or type(schema_message.get("schema")) is not dict:
        raise InvalidMessage(f"$schema at {where}: {ref.cid} is not a json-schema message")
    import jsonschema  # only messages that name a schema pay for this import

    # The object as its signatures sign it: a put checks it before signing adds
    # `$signatures`, fsck and import after, and all three must agree.
    content = {k: v for k, v in obj.items() if k != SIGNATURES}
    try:
        jsonschema.validate(codec.to_json(content), schema_message["schema"])
    except jsonschema.ValidationError as e:
        path = "/".join(str(p) for p in e.absolute_path)
        raise InvalidMessage(f"does not conform to schema {ref.cid} at {where}{path}: {e.message}") from None
    except jsonschema.SchemaError as e:
        raise InvalidMessage(f"schema {ref.cid} is not a valid JSON schema: {e.message}") from None
    except (RecursionError, ValueError, TypeError, re.error) as e:  # a hostile schema (a bad regex)
        raise InvalidMessage(f"schema {ref.cid} cannot be applied: {_short_error(e)}") from None


def _short_error(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text if len(text) <= 200 else text[:200] + "…"


def validate_message(
    message: Any, schema_lookup: SchemaLookup | None = None, missing_schemas: list[CID] | None = None
) -> list[PublicKey]:
    """Validate all reserved fields of `message`; return the keys that signed its root.

    A `$schema` whose schema message `schema_lookup` does not find raises `MissingSchema`;
    with `missing_schemas`, its CID is added there instead and the rest is checked."""
    if type(message) is not dict:
        raise InvalidMessage("a message must be a JSON object")
    if "$ref" in message:
        raise InvalidMessage("a message cannot itself be a $ref pointer")
    if VAR in message:  # signing would add $signatures beside it, which $var forbids
        raise InvalidMessage("a message cannot itself be a $var placeholder")
    if native is not None and not native.has_reserved(message):
        return []  # no reserved field anywhere (most messages): nothing more to check
    walk = _Walk(message, schema_lookup, missing_schemas)
    walk.node(message, "/")
    if walk.has_include:
        expand_includes(message)  # raises on a cycle or a dangling internal include
    return walk.root_signers


class _Walk:
    """One walk over a message (a class, not nested functions: those would make a
    reference cycle per message, left for the garbage collector)."""

    __slots__ = ("has_include", "message", "missing_schemas", "root_signers", "schema_lookup")

    def __init__(
        self, message: dict[str, Any], schema_lookup: SchemaLookup | None, missing: list[CID] | None
    ) -> None:
        self.message = message
        self.schema_lookup = schema_lookup
        self.missing_schemas = missing
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
                if is_partial(v) and SIGNATURES in pointer_segments(v):
                    # signing adds to the root's: the target would differ once signed
                    raise InvalidMessage(f"$include at {where} points into $signatures")
                self.has_include = True
            elif key == "$prev":
                _check_prev(v, where)
            elif key == VAR:
                if len(value) != 1:
                    raise InvalidMessage(f"the object holding $var at {where} has other fields")
                if type(v) is not str or not v:
                    raise InvalidMessage(f"$var at {where} must be a non-empty string")
            elif key == "$schema":
                _check_schema(value, v, where, self.schema_lookup, self.missing_schemas)
            else:
                raise InvalidMessage(f"unknown reserved field '{key}' at {where}")


def schema_cids(message: Any) -> list[CID]:
    """The schema messages the `$schema` fields of a validated message name (escaped
    `$$` values aside): what it needs beside its links to be checked again."""
    out: list[CID] = []
    stack = [message]
    while stack:
        value = stack.pop()
        if type(value) is list:
            stack.extend(v for v in value if type(v) is dict or type(v) is list)
        elif type(value) is dict:
            for key, v in value.items():
                if key == "$schema" and type(v) is str:
                    ref = parse_static(v)
                    if ref is not None:
                        out.append(ref.cid.to_v1())
                elif not key.startswith("$$") and (type(v) is dict or type(v) is list):
                    stack.append(v)
    return out
