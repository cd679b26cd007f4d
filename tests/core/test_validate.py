"""Reserved `$` fields (SPEC §3)."""

from __future__ import annotations

from typing import Any

import pytest

from mizu_core.errors import InvalidMessage, SignatureError, UsageError
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.message.keys import PrivateKey
from mizu_core.message.signatures import sign
from mizu_core.message.templates import expand_includes, fill_vars
from mizu_core.message.validate import validate_message

CID_A = "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"
URI_A = f"https://mizu.stream/v0/view-raw/{CID_A}"


@pytest.mark.parametrize(
    "message",
    [
        {"$$anything": {"$foo": [1, {"$bar": 2}]}},
        {"a": {"$ref": "#"}},
        {"a": {"$ref": "#/b/c"}, "b": {"c": 1}},
        {"a": {"$ref": URI_A}},
        {"a": {"$ref": f"https://mizu.stream/message/{CID_A}"}},
        {"$prev": URI_A},
        {"$prev": [URI_A, {"$ref": f"https://mizu.stream/v0/update/{CID_A}"}]},
        {"q": {"$var": "user"}},
        {"base": {"x": 1}, "derived": {"$include": "#/base", "y": 2}},
        {"f": {"$include": URI_A}},
        {"file": {"$ref": f"ipfs://{CID_A}"}},
    ],
)
def test_valid(message: dict[str, Any]) -> None:
    validate_message(message)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"$foo": 1}, "'\\$foo'"),
        ({"a": [{"b": {"$foo": 1}}]}, "'\\$foo' at /a/0/b/"),
        ({"a": {"$ref": "#", "b": 1}}, "other fields"),
        ({"a": {"$ref": "https://example.com/x"}}, "not a Mizu URI"),
        ({"a": {"$ref": 5}}, "URI string"),
        ({"$prev": "#"}, "not a Mizu URI"),
        ({"$prev": []}, "empty list"),
        ({"$prev": f"ipfs://{CID_A}"}, "not an ipfs"),
        ({"q": {"$var": 3}}, "non-empty string"),
        ({"q": {"$var": "x", "y": 1}}, "other fields"),
        ({"a": {"$include": "#"}}, "cycle"),
        ({"a": {"$include": "#/b"}, "b": {"$include": "#/a"}}, "cycle"),
        ({"a": {"$include": "#/missing"}}, "does not exist"),
        ({"a": {"$include": "#/b"}, "b": 5}, "not an object"),
        ({"$schema": URI_A}, "not in the repository"),
        ([1, 2], "JSON object"),
        ({"$ref": "#"}, "cannot itself"),
    ],
)
def test_invalid(message: Any, error: str) -> None:
    with pytest.raises(InvalidMessage, match=error):
        validate_message(message)


def test_include_expansion_own_fields_win() -> None:
    message = {"base": {"x": 1, "y": 1}, "d": {"$include": "#/base", "y": 2}}
    assert expand_includes(message)["d"] == {"x": 1, "y": 2}


def test_include_bomb_is_bounded() -> None:
    message: dict[str, Any] = {"l0": {"v": list(range(10))}}
    for i in range(1, 30):
        message[f"l{i}"] = {"a": {"$include": f"#/l{i-1}"}, "b": {"$include": f"#/l{i-1}"}}
    with pytest.raises(InvalidMessage, match="exceeds"):
        validate_message(message)


def test_fill_vars() -> None:
    template = {"where": {"name": {"$var": "user"}}, "$$keep": {"$var": "raw"}}
    assert fill_vars(template, {"user": "ann"}) == {"where": {"name": "ann"}, "$$keep": {"$var": "raw"}}
    with pytest.raises(UsageError, match="missing parameter 'user'"):
        fill_vars(template, {})


def test_schema_conformance() -> None:
    schema_message = {"kind": "json-schema", "schema": {"type": "object", "required": ["title"]}}
    schema_cid = CID.for_block(codec.encode(schema_message))
    lookup = {schema_cid: schema_message}.get
    uri = f"https://mizu.stream/v0/view-raw/{schema_cid}"
    validate_message({"$schema": uri, "title": "x"}, lambda ref: lookup(ref.cid))
    with pytest.raises(InvalidMessage, match="does not conform"):
        validate_message({"$schema": uri}, lambda ref: lookup(ref.cid))
    with pytest.raises(InvalidMessage, match="not a json-schema message"):
        validate_message({"$schema": uri}, lambda ref: {"kind": "xml"})


def test_nested_signatures_are_checked() -> None:
    key = PrivateKey.generate()
    inner = sign({"claim": "x"}, key)
    assert validate_message({"outer": inner}) == []
    inner["claim"] = "y"
    with pytest.raises(SignatureError):
        validate_message({"outer": inner})
    assert validate_message(sign({"a": 1}, key)) == [key.public_key]


# -- what put accepts, fsck and import accept (issue 21, class 2) -----------------------------


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"$var": "x"}, "cannot itself be a \\$var"),  # signing would add a field beside it
        ({"$var": "x", "a": 1}, "cannot itself be a \\$var"),
        ({"a": {"$include": "#/$signatures"}}, "into \\$signatures"),  # the root's grow when signed
        ({"a": {"$include": "#/b/$signatures/0"}, "b": {}}, "into \\$signatures"),
    ],
)
def test_invalid_whether_signed_or_not(message: Any, error: str) -> None:
    with pytest.raises(InvalidMessage, match=error):
        validate_message(message)
    with pytest.raises(InvalidMessage, match=error):
        validate_message(sign(message, PrivateKey.generate()))


def test_a_schema_judges_what_the_signatures_sign() -> None:
    """A closed schema holds for the message before signing adds `$signatures` and after."""
    schema_message = {"kind": "json-schema", "schema": {
        "type": "object", "additionalProperties": False,
        "properties": {"$schema": {"type": "string"}, "title": {"type": "string"}}}}
    schema_cid = CID.for_block(codec.encode(schema_message))
    lookup = {schema_cid: schema_message}.get
    message = {"$schema": f"https://mizu.stream/v0/view-raw/{schema_cid}", "title": "x"}
    validate_message(message, lambda ref: lookup(ref.cid))
    validate_message(sign(message, PrivateKey.generate()), lambda ref: lookup(ref.cid))
    with pytest.raises(InvalidMessage, match="does not conform"):
        validate_message(dict(message, extra=1), lambda ref: lookup(ref.cid))


def test_a_missing_schema_can_be_noted_instead_of_raised() -> None:
    from mizu_core.message.validate import MissingSchema

    message = {"$schema": URI_A, "nested": {"$foo": 1}}
    with pytest.raises(MissingSchema):
        validate_message({"$schema": URI_A})
    missing: list[CID] = []
    with pytest.raises(InvalidMessage, match="'\\$foo'"):  # the rest is still checked
        validate_message(message, None, missing)
    assert missing == [CID.parse(CID_A)]


def test_a_hostile_schema_is_a_one_line_error() -> None:
    schema_message = {"kind": "json-schema", "schema": {"type": "string", "pattern": "(unclosed"}}
    with pytest.raises(InvalidMessage) as caught:
        validate_message({"$schema": URI_A}, lambda ref: schema_message)
    assert "\n" not in str(caught.value)


def test_signing_does_not_change_the_include_budget() -> None:
    """Expansion does not walk `$signatures`, so a message just inside the budget stays so."""
    message: dict[str, Any] = {"base": {"v": list(range(10))}, "d": {"$include": "#/base"}}
    signed = sign(message, PrivateKey.generate())
    assert expand_includes(signed)["$signatures"] == signed["$signatures"]
    assert expand_includes(signed)["d"] == {"v": list(range(10))}
