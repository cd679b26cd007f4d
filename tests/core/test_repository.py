"""The repository contract, run on the memory twin and on real LMDB files alike."""

from __future__ import annotations

import pytest

from mizu_core import Repository, terms
from mizu_core.errors import InvalidMessage, NotFound
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.publish.inputs import MessageText
from mizu_core.repo import blockstore
from mizu_core.repo.index import IndexWriter, TermCache, TermDictionary
from mizu_core.repo.kv import MemoryStore, Txn
from mizu_core.repo.upkeep import fsck, gc
from tests.conftest import SPEC_VECTORS

AUTHOR = terms.iri("https://mizu.stream/author")


def test_publish_vectors_and_read_back(repo: Repository) -> None:
    result = repo.publish([m for m, _ in SPEC_VECTORS], sign=False)
    assert [str(c) for c in result.cids] == [c for _, c in SPEC_VECTORS]
    for message, cid in SPEC_VECTORS:
        assert repo.message(CID.parse(cid)) == message
    assert fsck(repo).ok


def test_batch_is_atomic(repo: Repository) -> None:
    items = [MessageText(b'{"n": 1}', "line 1"), MessageText(b'{"$bad": 1}', "line 2")]
    with pytest.raises(InvalidMessage, match=r"^line 2: unknown reserved field"):
        repo.publish(items)
    assert list(repo.log()) == [] and repo.count_triples() == 0
    result = repo.publish(items, skip_invalid=True)
    assert len(result.cids) == 1 and [r.where for r in result.rejected] == ["line 2"]
    assert repo.count_triples() == 4  # n, the $signatures link, its key and its digest


def test_republishing_is_idempotent(repo: Repository) -> None:
    first = repo.publish([{"a": 1}], sign=False)
    again = repo.publish([{"a": 1}], sign=False)
    assert first.cids == again.cids and again.added == 0
    assert len(list(repo.log())) == 1 and repo.count_triples() == 1


def test_signed_by_repository_identity(repo: Repository) -> None:
    cid = repo.publish([{"a": 1}]).cids[0]
    entry = next(repo.log())
    assert entry.cid == cid and entry.signers == (repo.identity.public_key.multibase(),)


def test_log_is_newest_first_and_limited(repo: Repository) -> None:
    cids = repo.publish([{"n": i} for i in range(5)], sign=False).cids
    assert [e.cid for e in repo.log()] == list(reversed(cids))
    assert [e.cid for e in repo.log(2)] == list(reversed(cids))[:2]


def test_index_answers_every_pattern_shape(repo: Repository) -> None:
    repo.publish([m for m, _ in SPEC_VECTORS], sign=False)
    solipsis = terms.literal("solipsis")
    with repo.index() as index:
        subjects = {s for s, _, _ in index.match(None, AUTHOR, solipsis)}
        assert len(subjects) == 2
        s = next(iter(subjects))
        assert len(list(index.match(s))) == 2
        assert len(list(index.match(s, AUTHOR))) == 1
        assert len(list(index.match(s, None, solipsis))) == 1
        assert len(list(index.match(s, AUTHOR, solipsis))) == 1
        assert len(list(index.match(None, AUTHOR))) == 3
        assert len(list(index.match(None, None, solipsis))) == 2
        assert len(list(index.match())) == 7
        assert list(index.match(None, None, terms.literal("nobody"))) == []


def test_view_paths_follow_links(repo: Repository) -> None:
    target = repo.publish([{"deep": {"x": [10, 20]}}], sign=False).cids[0]
    outer = repo.publish([{"next": target, "list": [{"k": "v"}]}], sign=False).cids[0]
    assert repo.resolve(outer, "list/0/k") == "v"
    assert repo.resolve(outer, "next/deep/x/1") == 20
    with pytest.raises(NotFound, match="no 'nope'"):
        repo.resolve(outer, "nope")


def test_update_view_merges_the_prev_chain(repo: Repository) -> None:
    base = repo.publish([{"title": "v1", "tags": ["a"]}], sign=False).cids[0]
    uri = f"https://mizu.stream/v0/view-raw/{base}"
    left = repo.publish([{"title": "v2", "$prev": uri}], sign=False).cids[0]
    right = repo.publish([{"tags": ["b", "a"], "$prev": uri}], sign=False).cids[0]
    head = repo.publish([{"$prev": [
        f"https://mizu.stream/v0/view-raw/{left}", f"https://mizu.stream/v0/view-raw/{right}"
    ]}], sign=False).cids[0]
    view = repo.update_view(head)
    assert view.value == {"title": ["v1", "v2"], "tags": ["a", "b"]}
    assert set(view.chain) == {head, left, right, base}
    assert repo.update_view(base).value == {"title": "v1", "tags": "a"}


def test_update_view_names_a_missing_ancestor(repo: Repository) -> None:
    missing = CID.for_block(b"\xa0")
    head = repo.publish([{"$prev": f"https://mizu.stream/v0/view-raw/{missing}"}], sign=False).cids[0]
    with pytest.raises(NotFound, match=str(missing)):
        repo.update_view(head)


def test_gc_drops_unpinned_messages_and_their_triples(repo: Repository) -> None:
    keep, drop = repo.publish([{"keep": 1}, {"drop": 1}], sign=False).cids
    assert gc(repo).blocks == 0
    assert repo.unpin([drop]) == 1
    result = gc(repo)
    assert (result.blocks, result.messages, result.triples) == (1, 1, 1)
    assert repo.has(keep) and not repo.has(drop)
    assert [e.cid for e in repo.log()] == [keep]
    assert fsck(repo).ok


def test_gc_keeps_what_pins_link(repo: Repository) -> None:
    child = repo.publish([{"child": 1}], sign=False).cids[0]
    parent = repo.publish([{"link": child}], sign=False).cids[0]
    repo.unpin([child])
    assert gc(repo).blocks == 0
    repo.unpin([parent])
    assert gc(repo).blocks == 2


def test_fsck_finds_a_corrupted_block(repo: Repository) -> None:
    cid = repo.publish([{"a": 1}], sign=False).cids[0]
    with repo.store.writer() as txn:
        txn.put("message_blocks", _seq_key(txn, cid), b"\xa1\x61\x61\x02")
    report = fsck(repo)
    assert not report.ok and any(f"block {cid}: content does not hash" in p for p in report.problems)


def _seq_key(txn: Txn, cid: CID) -> bytes:
    """The key of a stored message's `log` entry and block: its arrival, packed."""
    return bytes(txn.get("messages", cid.raw) or b"")[:8]


def test_a_put_appends_message_blocks_by_arrival(repo: Repository) -> None:
    cids = repo.publish([{"n": n} for n in range(5)], sign=False).cids
    with repo.store.reader() as txn:
        assert [k for k, _ in txn.scan("message_blocks")] == [k for k, _ in txn.scan("log")]
        assert [_seq_key(txn, cid) for cid in cids] == [k for k, _ in txn.scan("log")]
        assert txn.count("blocks") == 0
    assert [codec.decode(repo.block(cid)) for cid in cids] == [{"n": n} for n in range(5)]


def test_messages_kept_by_cid_as_older_stores_keep_them_still_work(repo: Repository) -> None:
    """A store written before `message_blocks` keeps message blocks in `blocks`."""
    old = repo.publish([{"old": 1}, {"old": 2}], sign=False).cids
    with repo.store.writer() as txn:
        for cid in old:
            key = _seq_key(txn, cid)
            txn.put("blocks", cid.raw, txn.get("message_blocks", key) or b"")
            txn.delete("message_blocks", key)
    new = repo.publish([{"new": 1}], sign=False).cids[0]
    assert repo.message(old[0]) == {"old": 1} and repo.has(old[1]) and repo.message(new) == {"new": 1}
    assert fsck(repo).ok
    with repo.store.reader() as txn:
        assert {CID(k) for k, _ in blockstore.scan(txn)} == {*old, new}
    repo.unpin([old[1], new])
    assert (gc(repo).blocks, repo.has(old[1]), repo.has(new)) == (2, False, False)
    assert repo.message(old[0]) == {"old": 1} and fsck(repo).ok


def test_fsck_finds_a_message_block_without_its_log_entry(repo: Repository) -> None:
    cid = repo.publish([{"a": 1}], sign=False).cids[0]
    data = repo.block(cid)
    with repo.store.writer() as txn:
        txn.put("message_blocks", b"\x00" * 7 + b"\x09", data)
    assert "message block 9 has no log entry" in fsck(repo).problems


def test_fsck_finds_a_missing_index_entry(repo: Repository) -> None:
    repo.publish([{"a": 1}], sign=False)
    with repo.store.writer() as txn:
        key = next(iter(txn.scan("pos")))[0]
        txn.delete("pos", key)
    problems = fsck(repo).problems
    assert any("missing from index pos" in p for p in problems)
    assert any("index pos holds 0" in p for p in problems)


def test_memory_and_lmdb_agree(tmp_path) -> None:
    disk = Repository.init(tmp_path)
    memory = Repository.memory()
    batch = [{"a": [1, {"b": 2}], "c": {"d": None}}, {"x": "y"}]
    assert disk.publish(batch, sign=False).cids == memory.publish(batch, sign=False).cids
    with disk.index() as a, memory.index() as b:
        assert set(a.match()) == set(b.match())


def test_gc_waits_for_writes_that_are_not_pinned_yet(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading

    repo = Repository.init(tmp_path)
    collected = threading.Event()
    with repo.unpinned_writes():
        with repo.store.writer() as txn:  # a block stored, its pin still to come
            txn.put("blocks", CID.for_block(b"chunk", 0x55).raw, b"chunk")
        worker = threading.Thread(target=lambda: (gc(repo), collected.set()))
        worker.start()
        assert not collected.wait(0.3)  # gc is held off while the write is unfinished
        repo.pin([CID.for_block(b"chunk", 0x55)])
    worker.join(timeout=10)
    assert collected.is_set() and repo.has(CID.for_block(b"chunk", 0x55))
    repo.close()


def test_terms_keep_one_id_when_the_writer_cache_forgets_them(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A term missing from the writer's cache gets a new id at once; writing the new terms
    # (in sorted runs) must find the ones the store had and give back their ids.
    monkeypatch.setattr(TermDictionary, "CACHE_LIMIT", 3)
    monkeypatch.setattr(IndexWriter, "FLUSH_AT", 5)
    repo.publish([{"author": "ann", "n": i} for i in range(6)], sign=False)
    repo.publish([{"author": "ann", "n": i} for i in range(6, 12)], sign=False)
    with repo.index() as index:
        assert len(list(index.match(None, AUTHOR, terms.literal("ann")))) == 12
        ids = [index.dictionary.lookup(terms.literal(i)) for i in range(12)]
    assert None not in ids and len(set(ids)) == 12
    report = fsck(repo)
    assert report.ok, report.problems


def test_a_new_term_reads_back_before_it_is_written() -> None:
    store = MemoryStore()
    with store.writer() as txn:
        dictionary = TermDictionary(txn)
        ids = [dictionary.intern(terms.literal(n)) for n in range(3)]
        assert [dictionary.term(i) for i in ids] == [terms.literal(n) for n in range(3)]
        assert dictionary.lookup(terms.literal(1)) == ids[1]
        dictionary.settle()
        assert [dictionary.term(i) for i in ids] == [terms.literal(n) for n in range(3)]


def test_a_term_the_writer_claimed_before_is_found_through_its_bloom_filter() -> None:
    store = MemoryStore()
    with store.writer() as txn:
        dictionary = TermDictionary(txn, TermCache(claims=100))
        first = dictionary.intern(terms.literal("a"))
        dictionary.intern(terms.literal("b"))
        dictionary.settle()
        dictionary._ids.clear()  # the writer's cache forgets "a": it gets a new id
        again = dictionary.intern(terms.literal("a"))
        dictionary.intern(terms.literal("c"))
        asked: list[int] = []
        get_many = txn.get_many
        txn.get_many = lambda table, keys: asked.append(len(keys)) or get_many(table, keys)  # type: ignore[method-assign]
        assert dictionary.settle() == {again: first}
        assert asked == [1]  # only "a" was probed: no reading back of every claim
        assert dictionary.lookup(terms.literal("a")) == first


# -- put and fsck agree; incompleteness is not corruption (issue 21, class 2) ----------------


def test_put_refuses_what_fsck_would_reject(repo: Repository) -> None:
    for sign in (True, False):
        with pytest.raises(InvalidMessage, match="cannot itself be a \\$var"):
            repo.publish({"$var": "x"}, sign=sign)
    assert list(repo.log()) == [] and fsck(repo).ok


def test_links_and_ancestors_not_held_are_incomplete_not_corrupt(repo: Repository) -> None:
    absent = CID.parse(SPEC_VECTORS[0][1])
    cid = repo.publish({"cover": absent, "$prev": f"https://mizu.stream/v0/view-raw/{absent}"})
    report = fsck(repo)
    assert report.ok and report.problems == []
    assert report.incomplete == [
        f"message {cid} links {absent}, which is not stored",
        f"message {cid}: its $prev {absent} is not stored",
    ]
    repo.publish(SPEC_VECTORS[0][0], sign=False)  # now held: complete
    assert fsck(repo).incomplete == []


def test_a_schema_in_use_survives_gc_and_a_closed_schema_holds_once_signed(repo: Repository) -> None:
    schema = repo.publish({"kind": "json-schema", "schema": {
        "type": "object", "additionalProperties": False,
        "properties": {"title": {}}, "patternProperties": {"^[$]schema$": {}}}})
    message = repo.publish({"$schema": f"https://mizu.stream/v0/view-raw/{schema}", "title": "x"})
    assert "$signatures" in repo.message(message)
    repo.unpin([schema])
    gc(repo)
    assert repo.has(schema)  # the message that names it keeps it
    report = fsck(repo)
    assert report.ok and report.incomplete == []


def test_fsck_reports_a_schema_not_held_as_incomplete(repo: Repository) -> None:
    schema = repo.publish({"kind": "json-schema", "schema": {"type": "object"}})
    message = repo.publish({"$schema": f"https://mizu.stream/v0/view-raw/{schema}"})
    repo.unpin([schema, message])
    with repo.store.writer() as txn:  # as if only the message had been replicated
        txn.put("pins", message.raw, b"user")
    _drop_message(repo, schema)
    report = fsck(repo)
    assert report.ok
    assert report.incomplete == [f"message {message}: its $schema {schema} is not stored, so conformance was not checked"]


def _drop_message(repo: Repository, cid: CID) -> None:
    """Remove a message the way gc does (its triples, log entry, block and metadata)."""
    import struct

    from mizu_core.message.triples import message_triples
    from mizu_core.repo.ingest import MessageInfo

    with repo.store.writer() as txn:
        meta = txn.get("messages", cid.raw)
        assert meta is not None
        seq_key = struct.pack(">Q", MessageInfo.decode(cid, bytes(meta)).seq)
        data = bytes(blockstore.get(txn, cid.raw) or b"")
        IndexWriter(txn, TermDictionary(txn)).remove(message_triples(cid, codec.decode(data)))
        blockstore.delete_message(txn, cid.raw, seq_key)
        txn.delete("log", seq_key)
        txn.delete("messages", cid.raw)
        txn.delete("pins", cid.raw)
