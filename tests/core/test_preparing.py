"""Preparing on several cores (repo/preparing.py) gives what a serial run gives."""

from __future__ import annotations

import json

import pytest

from mizu_core.errors import InvalidMessage
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.message.signatures import sign_and_encode
from mizu_core.repo import preparing
from mizu_core.repo.repository import MessageText, Repository
from mizu_core.repo.upkeep import fsck


@pytest.fixture
def small_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers after the first 10 messages, 4 per chunk: every path on a small input."""
    monkeypatch.setattr(preparing, "SERIAL", 10)
    monkeypatch.setattr(preparing, "CHUNK", 4)


def lines(messages: list[object]) -> list[MessageText]:
    return [MessageText(json.dumps(m).encode(), f"line {n}", line=n) for n, m in enumerate(messages, 1)]


def test_workers_give_the_serial_result(repo: Repository, small_pool: None) -> None:
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


def test_an_invalid_message_late_in_the_input_stores_nothing(repo: Repository, small_pool: None) -> None:
    messages: list[object] = [{"n": i} for i in range(50)]
    messages[36] = {"$bogus": 1}
    with pytest.raises(InvalidMessage, match=r"^line 37: unknown reserved field"):
        repo.publish(lines(messages), sign=False)
    assert repo.count_triples() == 0 and list(repo.log()) == []
    result = repo.publish(lines(messages), sign=False, skip_invalid=True)
    assert [r.where for r in result.rejected] == ["line 37"] and result.added == 49


def test_a_schema_published_earlier_in_the_same_input_is_found(repo: Repository, small_pool: None) -> None:
    schema = {"kind": "json-schema", "schema": {"type": "object", "required": ["title"]}}
    uri = f"https://mizu.stream/v0/view-raw/{CID.for_block(codec.encode(schema))}"
    messages: list[object] = [{"n": i} for i in range(12)] + [schema]
    messages += [{"$schema": uri, "title": f"t{i}"} for i in range(20)]  # in workers' chunks
    result = repo.publish(lines(messages), sign=False)
    assert result.added == len(messages)
    bad = [*messages[:13], {"$schema": uri, "name": "no title"}]
    with pytest.raises(InvalidMessage, match=r"^line 14: does not conform to schema"):
        repo.publish(lines(bad), sign=False)
