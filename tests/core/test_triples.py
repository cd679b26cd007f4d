"""The message → triples mapping (SPEC §2)."""

from __future__ import annotations

from mizu_core import terms
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.message.triples import message_triples

CID_A = "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"
ROOT = f"https://mizu.stream/v0/view-raw/{CID_A}"


def nt(message: dict) -> set[tuple[str, str, str]]:
    return {tuple(terms.to_nt(t) for t in triple) for triple in message_triples(CID_A, message)}


def test_scalars_become_typed_literals() -> None:
    got = nt({"s": "x", "i": 5, "f": 1.5, "b": True, "raw": b"\x01", "nothing": None})
    xsd = "http://www.w3.org/2001/XMLSchema#"
    assert got == {
        (f"<{ROOT}>", "<https://mizu.stream/s>", '"x"'),
        (f"<{ROOT}>", "<https://mizu.stream/i>", f'"5"^^<{xsd}integer>'),
        (f"<{ROOT}>", "<https://mizu.stream/f>", f'"1.5"^^<{xsd}double>'),
        (f"<{ROOT}>", "<https://mizu.stream/b>", f'"true"^^<{xsd}boolean>'),
        (f"<{ROOT}>", "<https://mizu.stream/raw>", f'"AQ=="^^<{xsd}base64Binary>'),
    }


def test_arrays_are_sets_and_nested_objects_are_nodes() -> None:
    got = nt({"tags": ["b", "a", "b"], "o": {"k": 1}, "list": [{"z": 1}, {"y": 2}]})
    p = "<https://mizu.stream/{}>".format
    assert (f"<{ROOT}>", p("tags"), '"a"') in got and (f"<{ROOT}>", p("tags"), '"b"') in got
    assert (f"<{ROOT}>", p("o"), f"<{ROOT}/o>") in got
    assert (f"<{ROOT}/o>", p("k"), '"1"^^<http://www.w3.org/2001/XMLSchema#integer>') in got
    # Elements are ranked in canonical DAG-CBOR order: {"y": 2} sorts before {"z": 1}.
    assert (f"<{ROOT}/list/0>", p("y"), '"2"^^<http://www.w3.org/2001/XMLSchema#integer>') in got
    assert (f"<{ROOT}/list/1>", p("z"), '"1"^^<http://www.w3.org/2001/XMLSchema#integer>') in got
    assert len(got) == 2 + 2 + 4


def test_array_order_does_not_change_triples() -> None:
    assert nt({"l": [{"a": 1}, {"b": 2}, 3]}) == nt({"l": [3, {"b": 2}, {"a": 1}]})


def test_pointers_links_and_reserved_iris() -> None:
    legacy = f"https://mizu.stream/message/{CID.parse(CID_A).encode('base58btc')}"
    got = nt({
        "self": {"$ref": "#"},
        "inner": {"$ref": "#/tags/1"}, "tags": ["z", "a"],
        "other": {"$ref": legacy},
        "link": CID.parse(CID_A),
        "$prev": legacy,
        "$$raw": {"$ref": "#"},
    })
    p = "<https://mizu.stream/{}>".format
    assert (f"<{ROOT}>", p("self"), f"<{ROOT}>") in got
    assert (f"<{ROOT}>", p("inner"), f"<{ROOT}/tags/0>") in got  # "a" ranks first
    assert (f"<{ROOT}>", p("other"), f"<{ROOT}>") in got  # normalised spelling
    assert (f"<{ROOT}>", p("link"), f"<{ROOT}>") in got
    assert (f"<{ROOT}>", p("$prev"), f"<{ROOT}>") in got
    assert (f"<{ROOT}/$$raw>", p("$ref"), '"#"') in got  # $$ values are plain data


def test_a_pointer_to_a_null_or_nested_array_is_kept_as_written() -> None:
    # Neither is an element of the set (nulls give nothing, nested arrays are flattened).
    got = nt({"tags": ["x", None, ["y"]], "a": {"$ref": "#/tags/1"}, "b": {"$ref": "#/tags/2/0"}})
    p = "<https://mizu.stream/{}>".format
    assert (f"<{ROOT}>", p("a"), f"<{ROOT}/tags/1>") in got
    assert (f"<{ROOT}>", p("b"), f"<{ROOT}/tags/2/0>") in got


def test_keys_are_percent_encoded() -> None:
    got = nt({"a b/c": 1})
    assert any(t[1] == "<https://mizu.stream/a%20b%2Fc>" for t in got)


def test_file_links_use_ipfs_scheme() -> None:
    file_cid = CID.for_block(b"data", codec=0x55)
    got = nt({"img": file_cid})
    assert {t[2] for t in got} == {f"<ipfs://{file_cid}>"}
    assert codec.decode(codec.encode({"img": file_cid}))["img"] == file_cid
