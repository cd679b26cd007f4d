"""The publish pipeline (mizu_core/publish/): preparing on several cores gives what a serial
run gives; batches, CID ranges and signing in segments store each message once."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from mizu_core import Repository
from mizu_core.errors import InvalidMessage, StoreError
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.message.keys import PrivateKey
from mizu_core.message.signatures import sign_and_encode
from mizu_core.publish import batches, records, signing, stages
from mizu_core.publish.inputs import Lines, MessageText, read_lines
from mizu_core.repo import config
from mizu_core.repo.upkeep import fsck

Lines_ = Callable[[list[object]], list[Any]]


@pytest.fixture
def small_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers after the first 10 messages, 4 per chunk: every path on a small input."""
    monkeypatch.setattr(stages, "SERIAL", 10)
    monkeypatch.setattr(stages, "CHUNK", 4)


def set_default(monkeypatch: pytest.MonkeyPatch, key: str, value: int) -> None:
    """Change a setting's default, as a repository with nothing set reads it."""
    monkeypatch.setitem(config.KEYS, key, dataclasses.replace(config.KEYS[key], default=value))


def text_lines(messages: list[object]) -> list[MessageText]:
    return [MessageText(json.dumps(m).encode(), f"line {n}", line=n) for n, m in enumerate(messages, 1)]


def ndjson_blocks(messages: list[object]) -> list[Lines]:
    """As `mizu put --lines` reads them: blocks of a few lines (some ending in \r\n), each a
    task for a worker."""
    text = b"".join(json.dumps(m).encode() + (b"\r\n" if i % 3 else b"\n") for i, m in enumerate(messages))
    return list(read_lines(io.BytesIO(text), size=16 * stages.CHUNK))  # ~CHUNK lines


@pytest.fixture(params=[text_lines, ndjson_blocks])
def lines(request: pytest.FixtureRequest) -> Callable[[list[object]], list[Any]]:
    """The messages as `publish` input: MessageText items, or NDJSON in `Lines` blocks."""
    return request.param  # type: ignore[no-any-return]


def test_workers_give_the_serial_result(lines: Lines_, repo: Repository, small_pool: None) -> None:
    messages = [{"n": i, "tags": ["a", str(i % 3)]} for i in range(60)]
    result = repo.publish(lines(messages), sign=False)
    assert [str(c) for c in result.cids] == [str(CID.for_block(codec.encode(m))) for m in messages]
    assert result.added == 60 and result.triples == 60 * 3
    assert fsck(repo).ok
    # Workers sign through libsodium (PrivateKey.for_many): the same signatures, so the
    # same CIDs as signing here.
    signed = repo.publish(lines([{"s": i} for i in range(40)]))
    assert repo.identity is not None
    here = [CID.for_block(sign_and_encode({"s": i}, repo.identity)[1]) for i in range(40)]
    assert list(signed.cids) == here and signed.added == 40
    assert all(e.signers for e in repo.log(limit=40))


def test_an_invalid_message_late_in_the_input_stores_nothing(lines: Lines_, repo: Repository, small_pool: None) -> None:
    messages: list[object] = [{"n": i} for i in range(50)]
    messages[36] = {"$bogus": 1}
    with pytest.raises(InvalidMessage, match=r"^line 37: unknown reserved field"):
        repo.publish(lines(messages), sign=False)
    assert repo.count_triples() == 0 and list(repo.log()) == []
    result = repo.publish(lines(messages), sign=False, skip_invalid=True)
    assert [r.where for r in result.rejected] == ["line 37"] and result.added == 49


def test_a_schema_published_earlier_in_the_same_input_is_found(lines: Lines_, repo: Repository, small_pool: None) -> None:
    schema = {"kind": "json-schema", "schema": {"type": "object", "required": ["title"]}}
    uri = f"https://mizu.stream/v0/view-raw/{CID.for_block(codec.encode(schema))}"
    messages: list[object] = [{"n": i} for i in range(12)] + [schema]
    messages += [{"$schema": uri, "title": f"t{i}"} for i in range(20)]  # in workers' chunks
    result = repo.publish(lines(messages), sign=False)
    assert result.added == len(messages)
    bad = [*messages[:13], {"$schema": uri, "name": "no title"}]
    with pytest.raises(InvalidMessage, match=r"^line 14: does not conform to schema"):
        repo.publish(lines(bad), sign=False)


def test_chunks_larger_than_a_pipe_holds_cross_whole(lines: Lines_, repo: Repository, small_pool: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks and results of several MB go through pipes written without blocking, in
    pieces: each must arrive whole and in order."""
    monkeypatch.setattr(stages, "CHUNK", 12)
    messages = [{"n": i, "text": f"{i:06d}" * 40_000} for i in range(60)]  # 240 kB each
    result = repo.publish(lines(messages), sign=False)
    assert [str(c) for c in result.cids] == [str(CID.for_block(codec.encode(m))) for m in messages]
    assert repo.message(result.cids[-1]) == messages[-1]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="lists children through /proc")
def test_a_worker_that_dies_fails_the_put_and_stores_nothing(
    lines: Lines_, repo: Repository, small_pool: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def die(*args: object) -> object:
        os._exit(3)

    monkeypatch.setattr(stages, "prepared_in_worker", die)  # in the workers, forked after this
    with pytest.raises(StoreError, match="a worker preparing messages died"):
        repo.publish(lines([{"n": i} for i in range(40)]), sign=False)
    assert repo.count_triples() == 0 and list(repo.log()) == []
    assert _children() == set()  # none left, not even as zombies


def _children() -> set[int]:
    pid = os.getpid()
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found.update(int(c) for c in f.read().split())
    return found


def test_what_fails_in_a_worker_for_any_reason_is_prepared_again_here(
    lines: Lines_, repo: Repository, small_pool: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent, triple_terms = os.getpid(), records.triple_terms

    def only_here(cid: CID, message: dict[str, object]) -> object:
        if os.getpid() != parent:
            raise RuntimeError("not in a worker")
        return triple_terms(cid, message)

    monkeypatch.setattr(records, "triple_terms", only_here)
    messages = [{"n": i} for i in range(30)]
    result = repo.publish(lines(messages), sign=False)
    assert [str(c) for c in result.cids] == [str(CID.for_block(codec.encode(m))) for m in messages]
    assert result.triples == 30


@pytest.mark.parametrize("batch", [1, 7, 100])
def test_batches_of_any_size_store_each_message_once(
    lines: Lines_, repo: Repository, small_pool: None, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches end inside chunks and slices; a chunk may hold no record (all rejected);
    a message repeated in the input is stored once; publishing it all again adds nothing."""
    set_default(monkeypatch, "core.batch-size", batch)
    messages: list[object] = [{"n": i % 45} for i in range(60)]  # 15 repeats
    messages[20:24] = [{"$bad": i} for i in range(4)]  # one whole chunk of 4, rejected
    result = repo.publish(lines(messages), sign=False, skip_invalid=True)
    assert [r.where for r in result.rejected] == ["line 21", "line 22", "line 23", "line 24"]
    assert len(result.cids) == 56 and result.added == 41 == len(list(repo.log()))
    assert result.triples == 41 and repo.count_triples() == 41
    assert set(repo.pins()) == set(result.cids)
    again = repo.publish(lines(messages), sign=False, skip_invalid=True)
    assert again.added == 0 and again.cids == result.cids
    assert fsck(repo).ok


GROWTH = batches.GROWTH


@pytest.mark.parametrize(("step", "steps", "transactions"), [
    (2 * GROWTH, 10**6, 3),  # grows at every check: every batch ends after one slice
    (2 * GROWTH, 3, 3),  # grows in the first batch only: the later ones take its size
    (GROWTH // 4, 10**6, 1),  # grows less than GROWTH a slice: one batch
    (0, 0, 1),  # holds memory already (pages LMDB kept), grows no more: one batch
])
def test_a_batch_ends_early_once_it_grows_memory_past_the_budget(
    lines: Lines_, repo: Repository, monkeypatch: pytest.MonkeyPatch, step: int, steps: int, transactions: int
) -> None:
    """Past the budget, a transaction ends after the slice that grew memory by more than
    GROWTH, and the next ones take as many messages as it did."""
    checks = iter(range(10**6))
    monkeypatch.setattr(batches, "private_memory", lambda: (1 << 30) + step * min(next(checks), steps))
    set_default(monkeypatch, "core.batch-memory", 1)
    commits = 0
    writer = repo.store.writer

    def counted() -> object:
        nonlocal commits
        commits += 1
        return writer()

    monkeypatch.setattr(repo.store, "writer", counted)
    messages = [{"n": i} for i in range(2 * batches.STORE_SLICE + 9)]
    result = repo.publish(lines(messages), sign=False)
    assert commits == transactions and result.added == len(messages) == len(list(repo.log()))
    assert fsck(repo).ok


def test_a_large_input_is_stored_one_cid_range_after_another(
    lines: Lines_, repo: Repository, small_pool: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_default(monkeypatch, "core.batch-size", 7)
    messages = [{"n": i} for i in range(60)]
    result = repo.publish(lines(messages), sign=False)
    arrived = [e.cid for e in reversed(list(repo.log()))]  # oldest first
    ranges = [records.cid_range(c.raw) for c in arrived]
    assert ranges == sorted(ranges) and len(set(ranges)) > 1
    # within a range, input order
    assert arrived == sorted(result.cids, key=lambda c: (records.cid_range(c.raw), result.cids.index(c)))
    # an input that fits in one batch keeps its order, though each task spooled its
    # records by CID range
    set_default(monkeypatch, "core.batch-size", 1000)
    monkeypatch.setattr(stages, "CHUNK", 30)
    more = repo.publish(lines([{"m": i} for i in range(60)]), sign=False)
    assert [e.cid for e in repo.log(limit=60)][::-1] == list(more.cids)


@pytest.mark.parametrize("key_type", ["ed25519", "rsa", "ecdsa"])
def test_a_signed_input_gets_the_signatures_of_signing_each_message_alone(
    lines: Lines_, repo: Repository, small_pool: None, monkeypatch: pytest.MonkeyPatch, key_type: str
) -> None:
    """Ed25519 and RSA messages are signed after the whole input is validated, segment by
    segment while the store runs (`signing.signed_segments`); ECDSA, whose signatures are not
    reproducible, signs while validating. Either way each message gets the signature of
    signing it alone, and every batch but the last is whole."""
    set_default(monkeypatch, "core.batch-size", 7)
    writer, commits = repo.store.writer, []
    monkeypatch.setattr(repo.store, "writer", lambda: commits.append(1) or writer())
    key = PrivateKey.generate(key_type)
    messages: list[object] = [{"s": i % 50} for i in range(60)]  # 10 repeats
    result = repo.publish(lines(messages), signer=key)
    assert len(commits) == 9  # whole batches of 7 but the last, though segments end mid-task
    distinct = 60  # ECDSA: a repeat gets a signature of its own, so another CID
    if key.deterministic:
        assert list(result.cids) == [CID.for_block(sign_and_encode(m, key)[1]) for m in messages]  # type: ignore[arg-type]
        distinct = 50
    assert len(result.cids) == 60 and len(set(result.cids)) == distinct == result.added
    assert result.triples == distinct * 4 == repo.count_triples()  # "s", and the $signatures node's 3
    for cid, message in zip(result.cids, messages, strict=True):
        stored = repo.message(cid)
        assert {k: v for k, v in stored.items() if k != "$signatures"} == message
    assert all(e.signers == (key.public_key.multibase(),) for e in repo.log())
    assert fsck(repo).ok


def test_a_message_that_fits_only_unsigned_fails_before_anything_is_stored(
    lines: Lines_, repo: Repository, small_pool: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_default(monkeypatch, "core.batch-size", 7)
    messages: list[object] = [{"n": i} for i in range(30)]
    padding = codec.MAX_MESSAGE_SIZE - len(codec.encode({"text": ""})) - 60  # fits unsigned only
    messages[25] = {"text": "x" * padding}
    assert len(codec.encode(messages[25])) <= codec.MAX_MESSAGE_SIZE
    with pytest.raises(InvalidMessage, match=r"^line 26: message is \d+ bytes encoded, over the 1 MiB limit"):
        repo.publish(lines(messages))
    assert repo.count_triples() == 0 and list(repo.log()) == []


def test_a_signed_schema_is_found_by_its_signed_cid_later_in_the_input(
    lines: Lines_, repo: Repository, small_pool: None
) -> None:
    assert repo.identity is not None
    schema = {"kind": "json-schema", "schema": {"type": "object", "required": ["title"]}}
    uri = f"https://mizu.stream/v0/view-raw/{CID.for_block(sign_and_encode(schema, repo.identity)[1])}"
    messages: list[object] = [{"n": i} for i in range(12)] + [schema]
    messages += [{"$schema": uri, "title": f"t{i}"} for i in range(20)]
    assert repo.publish(lines(messages)).added == len(messages)
    bad = [*messages[:13], {"$schema": uri, "name": "no title"}]
    with pytest.raises(InvalidMessage, match=r"^line 14: does not conform to schema"):
        repo.publish(lines(bad))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="lists children through /proc")
def test_a_worker_that_dies_while_signing_ends_the_put_after_whole_batches(
    lines: Lines_, repo: Repository, small_pool: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signing runs while the store does, so a worker lost then is like a crash: the put
    fails with the batches before it stored whole, and running it again completes it."""
    set_default(monkeypatch, "core.batch-size", 5)
    parent, signed = os.getpid(), signing.signed
    calls = 0

    def dies_late(record: object, key: object) -> object:
        nonlocal calls
        calls += 1
        if os.getpid() != parent and calls > 12:
            os._exit(3)
        return signed(record, key)  # type: ignore[arg-type]

    monkeypatch.setattr(signing, "signed", dies_late)
    messages = [{"n": i} for i in range(60)]
    with pytest.raises(StoreError, match="a worker preparing messages died"):
        repo.publish(lines(messages))
    assert _children() == set()
    stored = len(list(repo.log()))
    assert 0 < stored < 60 and stored % 5 == 0 and fsck(repo).ok
    monkeypatch.setattr(signing, "signed", signed)
    assert len(repo.publish(lines(messages)).cids) == 60 == len(list(repo.log()))
