"""Message validation and publish, with reserved fields in odd places: `put` either refuses
a message with a one-line InvalidMessage and stores nothing, or stores it, and then `fsck`
passes and the message survives export and import into a fresh repository. And the other
way: a message that an import accepts, `put` accepts, and one that `put` refuses, an
import refuses (put, import and fsck agree on every message: issue 21)."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import event, example, given
from hypothesis import strategies as st

from mizu_core import Repository
from mizu_core.errors import InvalidMessage
from mizu_core.files.car import reachable, read_car, write_car
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.message.keys import PrivateKey
from mizu_core.message.signatures import sign
from mizu_core.repo.upkeep import fsck
from tests.fuzz import fuzz_settings

KEY = PrivateKey.generate()
OTHER = PrivateKey.generate()
ABSENT = "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"
# Two schema messages every repository of these tests holds: an open one, and a closed one
# that a message with `$signatures` beside its fields must still satisfy.
OPEN = {"kind": "json-schema", "schema": {"type": "object"}}
CLOSED = {"kind": "json-schema", "schema": {
    "type": "object", "additionalProperties": False,
    "properties": {"a": {}, "b": {}, "x": {}}, "patternProperties": {"^[$](schema|prev|\\$e)$": {}}}}
SCHEMAS = [CID.for_block(codec.encode(s)) for s in (OPEN, CLOSED)]


def _uri(cid: CID | str) -> str:
    return f"https://mizu.stream/v0/view-raw/{cid}"


uris = st.sampled_from([
    _uri(ABSENT), _uri(SCHEMAS[0]), _uri(SCHEMAS[1]), f"https://mizu.stream/v0/update/{ABSENT}",
    f"ipfs://{ABSENT}", f"https://mizu.stream/message/{SCHEMAS[1]}", "#", "#/a", "#/b/0", "#/$signatures",
    "#/$signatures/0/key", "#/x/$signatures", "#/$$e", "https://example.com/x", "", "bafy", "z",
])
RESERVED = ["$var", "$ref", "$include", "$prev", "$schema", "$signatures", "$$e", "$bogus", "$", "$$"]
keys = st.sampled_from(RESERVED) | st.sampled_from(["a", "b", "x", "/", "0"])  # half reserved
signature_entries = st.fixed_dictionaries({"key": st.sampled_from([KEY.public_key.multibase(), "zz", "x"]),
                                           "digest": st.sampled_from(["z1", "zQm", ""])})
leaves = (
    uris | st.text(max_size=4) | st.integers(-3, 3) | st.none() | st.booleans()
    | st.builds(CID.parse, st.sampled_from([ABSENT, str(SCHEMAS[0])]))
    | st.builds(lambda u: {"$ref": u}, uris) | st.builds(lambda u: {"$var": u}, st.sampled_from(["n", "", "x"]))
    | st.lists(uris, max_size=2) | signature_entries | st.lists(signature_entries, max_size=2)
)


def _signed_maybe(obj: dict[str, Any], how: int) -> dict[str, Any]:
    """A nested object as it is, signed by another key, or signed and then changed."""
    if how == 0 or type(obj) is not dict:
        return obj
    try:
        signed = sign(obj, OTHER)
    except InvalidMessage:
        return obj
    return signed if how == 1 else {**signed, "a": "changed"}


values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3)
    | st.builds(_signed_maybe, st.dictionaries(keys, inner, max_size=3), st.sampled_from([0, 0, 1, 2])),
    max_leaves=12,
)
messages = st.dictionaries(keys, values, max_size=4)


def _repo() -> Repository:
    repo = Repository.memory(KEY)
    repo.publish([OPEN, CLOSED], sign=False)
    return repo


def _counts(repo: Repository) -> tuple[int, ...]:
    with repo.store.reader() as txn:
        return tuple(txn.count(t) for t in ("blocks", "messages", "log", "pins", "spo"))


def _import(repo: Repository, root: CID, blocks: list[tuple[CID, bytes]]) -> None:
    out = io.BytesIO()
    write_car(out, [root], blocks)
    read_car(repo, io.BytesIO(out.getvalue()))


@fuzz_settings(200)
@given(messages, st.booleans())
# The issue's examples, always run: each was stored, and then failed fsck for good.
@example({"$var": "x"}, True)
@example({"a": {"$include": "#/$signatures"}}, True)
@example({"$schema": _uri(SCHEMAS[1]), "a": 1}, True)
@example({"a": CID.parse(ABSENT), "$prev": _uri(ABSENT)}, True)
@example({"$$e": CID.parse(ABSENT)}, False)
def test_put_import_and_fsck_agree(message: dict[str, Any], signed: bool) -> None:
    repo = _repo()
    before = _counts(repo)
    try:
        cid = repo.publish(message, sign=signed)
    except InvalidMessage as e:
        event("refused")
        assert "\n" not in str(e)
        assert _counts(repo) == before  # a refused put stores nothing
        if not signed:  # what put refuses, an import refuses too
            try:
                data = codec.encode(message)
            except InvalidMessage:
                return
            target = _repo()
            try:
                _import(target, CID.for_block(data), [(CID.for_block(data), data)])
            except InvalidMessage:
                assert _counts(target) == before
                return
            raise AssertionError(f"put refused ({e}) what import accepted") from None
        return
    event("stored, with a reserved field" if set(message) & set(RESERVED) else "stored")
    report = fsck(repo)
    assert report.ok, report.problems
    stored = repo.message(cid)
    # Export and import into a fresh repository (without the schemas: they travel along).
    missing: list[CID] = []
    blocks = list(reachable(repo, [cid], missing))
    fresh = Repository.memory(KEY)
    _import(fresh, cid, blocks)
    assert fresh.message(cid) == stored and fresh.pins() == [cid]
    report = fsck(fresh)
    assert report.ok, report.problems
    # What import accepted, put accepts as it is (unsigned: the same bytes, the same CID).
    assert _repo().publish(stored, sign=False) == cid
