"""Local filters (SPEC §6): private is never sent, discard never stored, block hidden
from local queries but served, pin kept by gc."""

from __future__ import annotations

from pathlib import Path

from mizu_core import Repository
from mizu_core.feeds import subscriptions
from mizu_core.repo.config import ConfigFile
from tests.core.test_sync_session import FEED, answers, exchange


def configure(repo: Repository, tmp_path: Path, key: str, value: str) -> None:
    """Give a memory repository a config file of its own (they share the global one)."""
    repo.config.repo_file = ConfigFile(tmp_path / f"{id(repo)}.toml")
    repo.config.repo_file.set(key, value)


def feed(repo: Repository, *extra: dict) -> list:
    return list(repo.publish([{"feed": "news", "title": f"t{i}", **e} for i, e in enumerate(extra)]).cids)


def test_private_records_are_never_sent(tmp_path: Path) -> None:
    a, b = Repository.memory(), Repository.memory()
    public, secret = feed(a, {}, {"secret": True})
    configure(a, tmp_path, "filters.private", '{"secret": true}')
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)
    exchange(b, a, lambda s: s.pull(sub.cid))
    assert b.has(public) and not b.has(secret)
    asked = exchange(b, a, lambda s: _fetch(s, [secret]))  # asked for by CID: refused too
    assert asked.unavailable == [secret] and not b.has(secret)


async def _fetch(session, cids):  # type: ignore[no-untyped-def]
    from mizu_core.sync.session import Transfer

    transfer = Transfer()
    await session.fetch(cids, transfer)
    return transfer


def test_discarded_records_are_never_stored(tmp_path: Path) -> None:
    a, b = Repository.memory(), Repository.memory()
    kept, spam = feed(a, {}, {"spam": True})
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)
    configure(b, tmp_path, "filters.discard", '{"spam": true}')
    exchange(b, a, lambda s: s.pull(sub.cid))
    assert b.has(kept) and not b.has(spam)


def test_blocked_records_are_kept_and_served_but_hidden_from_queries(tmp_path: Path) -> None:
    a, b, c = Repository.memory(), Repository.memory(), Repository.memory()
    _, rude = feed(a, {}, {"rude": True})
    sub, _ = subscriptions.subscribe(a, FEED)
    for repo in (b, c):
        subscriptions.subscribe(repo, FEED)
    configure(b, tmp_path, "filters.block", '{"rude": true}')
    exchange(b, a, lambda s: s.pull(sub.cid))
    assert b.has(rude)
    assert answers(b) == ["t0"]
    exchange(c, b, lambda s: s.pull(sub.cid))  # b still serves it
    assert c.has(rude) and answers(c) == ["t0", "t1"]


def test_pinned_by_filter_survives_gc(tmp_path: Path) -> None:
    a, b = Repository.memory(), Repository.memory()
    keep, drop = feed(a, {"keep": True}, {})
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)
    exchange(b, a, lambda s: s.pull(sub.cid))
    subscriptions.unsubscribe(b, sub.cid)
    configure(b, tmp_path, "filters.pin", '{"keep": true}')
    b.gc()
    assert b.has(keep) and not b.has(drop)


def test_gc_keeps_what_subscriptions_hold_and_drops_it_after_unsubscribe() -> None:
    a, b = Repository.memory(), Repository.memory()
    records = feed(a, {}, {})
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)
    exchange(b, a, lambda s: s.pull(sub.cid))
    b.gc()
    assert b.has(sub.cid) and all(b.has(r) for r in records)
    subscriptions.unsubscribe(b, sub.cid)
    b.gc()
    assert not any(b.has(r) for r in records)
