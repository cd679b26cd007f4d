"""A pull (or push) that moves nothing says why (issue 23, item 2): up to date, the peer
holds no records for the feed, the peer refused, or it could not be reached; distinct
lines, `--json` results per peer and subscription, and the exit codes of SPEC §7.

In process, without a network: `with_peers` is replaced by one that runs the command's
own sessions over in-memory streams to servers of in-memory repositories."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from mizu_core import Repository
from mizu_core.errors import PeerError
from mizu_core.feeds import subscriptions
from mizu_core.sync.protocol import FrameReader, encode_frame
from mizu_core.sync.server import Server, answer_stream
from mizu_core.sync.session import SyncSession
from tests.cli.conftest import Mizu, run_mizu
from tests.core.test_sync_session import TrioStream

QUERY = {"@select": "?t", "@where": {"feed": "news", "title": "?t"}}
OTHER = {"@select": "?n", "@where": {"name": "?n"}}
IDS = ["12D3KooWBbjahBfovdxb6buTnpD1yYxT1BeztLHouetoppKqi8fX",
       "12D3KooWSiDkHPrGw2eueXwJws2yQfpKcPKuzBL2QUNcSyZRCoLg",
       "12D3KooWDNRvxFJQb4yfKZBCn2j6ntXXN5jd3JJEoqeEpADHwRTc"]
ADDRESSES = [f"/ip4/127.0.0.1/tcp/{4737 + i}/p2p/{peer}" for i, peer in enumerate(IDS)]

Serve = Callable[[TrioStream], Awaitable[None]]


CLOSED = subscriptions.AskBounds(feeds=0, records=1000, total=1000, budget=5.0)  # serve.asked-feeds-max 0


def serving(repo: Repository, bounds: subscriptions.AskBounds | None = None) -> Serve:
    return lambda stream: answer_stream(Server(repo, bounds), stream, "client")


def refusing(reason: str) -> Serve:
    """A peer that answers every request with an error frame."""
    async def run(stream: TrioStream) -> None:
        reader = FrameReader(stream)
        while await reader.read_frame() is not None:
            await stream.write(encode_frame({"error": reason}))

    return run


@pytest.fixture
def peers(monkeypatch: pytest.MonkeyPatch) -> dict[str, Serve]:
    """Address → how that peer answers; an address not in it cannot be reached."""
    servers: dict[str, Serve] = {}

    def with_peers(repo: Repository, addresses: list[str], action: Any, timeout: float = 5.0,
                   discover: Any = None) -> list[Any]:
        from mizu_core.sync.node import PeerOutcome

        if not addresses:
            raise PeerError("no peers to contact")
        outcomes = []
        for address in addresses:
            outcome = PeerOutcome(address)
            serve = servers.get(address)
            if serve is None:
                outcome.error = PeerError(f"{address}: ConnectionRefusedError: [Errno 111] Connect call failed")
            else:
                outcome.result = trio.run(_exchange, repo, address, serve, action)
            outcomes.append(outcome)
        return outcomes

    monkeypatch.setattr("mizu_core.sync.node.with_peers", with_peers)
    return servers


async def _exchange(repo: Repository, address: str, serve: Serve, action: Any) -> Any:
    left, right = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, TrioStream(right))
        with trio.fail_after(20):
            result = await action(SyncSession(repo, TrioStream(left), address.rsplit("/p2p/", 1)[1], timeout=2))
        nursery.cancel_scope.cancel()
    return result


def publisher(posts: int = 3, follows: bool = False) -> Repository:
    repo = Repository.memory()
    repo.publish([{"feed": "news", "title": f"post {i}"} for i in range(posts)])
    repo.publish([{"name": "ann"}])
    if follows:
        subscriptions.subscribe(repo, QUERY)
    return repo


def subscribe(mizu: Mizu, query: dict[str, Any] = QUERY) -> str:
    return mizu("subscribe", json.dumps(query)).stdout.strip()


def results(out: str) -> list[tuple[str, str, str]]:
    report = json.loads(out)
    return [(r["peer"], r["subscription"], r["status"]) for r in report["results"]]


def test_pulled_then_up_to_date(mizu: Mizu, peers: dict[str, Serve]) -> None:
    peers[ADDRESSES[0]] = serving(publisher(follows=True))
    sub = subscribe(mizu)
    mizu("remote", "add", "origin", ADDRESSES[0])
    first = mizu("--json", "pull")
    assert first.code == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["records"] == 3 and report["peers"] == 1 and report["errors"] == []
    assert report["results"] == [{"peer": ADDRESSES[0], "subscription": sub, "status": "pulled",
                                  "records": 3, "reason": None}]
    assert first.stderr == ""  # --json: the notes are in the report

    again = mizu("pull")
    assert again.code == 0
    assert again.stderr == f"up to date with origin for {sub}\n"  # the remote's name
    assert again.stdout.startswith("pulled 0 records (") and "from 1 peer" in again.stdout
    assert mizu("-q", "pull").stderr == ""  # a note: --quiet silences it
    assert results(mizu("--json", "pull").stdout) == [(ADDRESSES[0], sub, "up-to-date")]


def test_a_peer_that_holds_nothing_for_the_feed(mizu: Mizu, peers: dict[str, Serve]) -> None:
    # The query is not here (subscribed by CID alone), so it cannot be sent, and the peer
    # neither follows the feed nor can build it: no root.
    elsewhere = Repository.memory()
    sub, _ = subscriptions.subscribe(elsewhere, QUERY)
    peers[ADDRESSES[0]] = serving(Repository.memory())
    assert mizu("subscribe", str(sub.cid)).code == 0
    out = mizu("pull", "--from", ADDRESSES[0])
    assert out.code == 0, out.stderr  # the peer answered: SPEC §7
    assert out.stderr == f"{ADDRESSES[0]} holds no records for {sub.cid} (its query is not here to send)\n"
    assert out.stdout.startswith("pulled 0 records")
    report = json.loads(mizu("--json", "pull", "--from", ADDRESSES[0]).stdout)
    (result,) = report["results"]
    assert result["status"] == "no-records" and "holds no records" in result["reason"]
    assert report["peers"] == 1 and report["errors"] == []


def test_a_feed_the_peer_never_subscribed_to_is_built_from_the_query_sent(
        mizu: Mizu, peers: dict[str, Serve]) -> None:
    peers[ADDRESSES[0]] = serving(publisher(posts=5))  # follows nothing
    sub = subscribe(mizu)
    out = mizu("--json", "pull", "--from", ADDRESSES[0])
    assert out.code == 0 and results(out.stdout) == [(ADDRESSES[0], sub, "pulled")]
    assert json.loads(out.stdout)["records"] == 5


def test_a_refusal_names_its_reason_and_exits_4(mizu: Mizu, peers: dict[str, Serve]) -> None:
    peers[ADDRESSES[0]] = refusing("busy building 2 other feeds; ask again later")
    sub = subscribe(mizu)
    out = mizu("pull", "--from", ADDRESSES[0])
    assert out.code == 4 and out.stdout == ""
    assert out.stderr == f"error: no peer answered well: {IDS[0]} refused: busy building 2 other feeds; ask again later\n"
    scripted = mizu("--json", "pull", "--from", ADDRESSES[0])
    assert scripted.code == 4
    report = json.loads(scripted.stdout)  # the report, then the error line
    assert report["results"] == [{"peer": ADDRESSES[0], "subscription": sub, "status": "refused", "records": 0,
                                  "reason": "busy building 2 other feeds; ask again later"}]
    assert report["peers"] == 0 and scripted.stderr.startswith("error: no peer answered well: ")


def test_a_node_that_answers_only_its_subscriptions_refuses(mizu: Mizu, peers: dict[str, Serve]) -> None:
    peers[ADDRESSES[0]] = serving(publisher(), CLOSED)
    subscribe(mizu)
    out = mizu("--json", "pull", "--from", ADDRESSES[0])
    assert out.code == 4
    (result,) = json.loads(out.stdout)["results"]
    assert result["status"] == "refused" and "serves only the feeds it follows" in result["reason"]


def test_unreachable_refused_and_answered_peers_side_by_side(mizu: Mizu, peers: dict[str, Serve]) -> None:
    down, refuses, answers = ADDRESSES
    peers[refuses] = refusing("feed too large here")
    peers[answers] = serving(publisher(follows=True))
    sub = subscribe(mizu)
    mizu("remote", "add", "origin", answers)
    out = mizu("pull", "--from", down, "--from", refuses, "--from", "origin")
    assert out.code == 0, out.stderr  # one peer answered: the others are reported
    lines = out.stderr.splitlines()
    assert lines[0].startswith(f"{down}: ") and "ConnectionRefusedError" in lines[0]
    assert lines[1] == f"{refuses} refused {sub}: feed too large here"
    assert len(lines) == 2 and "pulled 3 records" in out.stdout and "from 1 peer " in out.stdout
    quiet = mizu("-q", "pull", "--from", down, "--from", refuses, "--from", "origin")
    assert quiet.stdout == "" and len(quiet.stderr.splitlines()) == 2  # failures: even with -q
    scripted = json.loads(mizu("--json", "pull", "--from", down, "--from", refuses, "--from", "origin").stdout)
    assert [(r["peer"], r["status"]) for r in scripted["results"]] == [
        (down, "unreachable"), (refuses, "refused"), (answers, "up-to-date")]
    assert scripted["peers"] == 1 and [e["peer"] for e in scripted["errors"]] == [down, refuses]


def test_nothing_reachable_exits_4_with_one_error_line(mizu: Mizu, peers: dict[str, Serve]) -> None:
    sub = subscribe(mizu)
    out = mizu("pull", "--from", ADDRESSES[0])
    assert out.code == 4 and out.stderr.startswith("error: no peer answered well: ") and out.stdout == ""
    scripted = mizu("--json", "pull", "--from", ADDRESSES[0])  # no peer reached: nothing to report
    assert scripted.code == 4 and scripted.stdout == "" and scripted.stderr == out.stderr
    peers[ADDRESSES[1]] = refusing("busy")  # one reached: the report, with both
    both = mizu("--json", "pull", "--from", ADDRESSES[0], "--from", ADDRESSES[1])
    assert both.code == 4 and results(both.stdout) == [(ADDRESSES[0], sub, "unreachable"),
                                                       (ADDRESSES[1], sub, "refused")]


def test_one_feed_refused_the_other_pulled(mizu: Mizu, peers: dict[str, Serve]) -> None:
    """A refusal ends that feed only; a feed no peer answered fails the pull (exit 4),
    after the report of the others."""
    peers[ADDRESSES[0]] = serving(publisher(follows=True), CLOSED)  # OTHER: not followed, not built
    news, other = subscribe(mizu), subscribe(mizu, OTHER)
    out = mizu("pull", "--from", ADDRESSES[0])
    assert out.code == 4
    assert out.stdout.startswith("pulled 3 records") and "for 2 subscriptions" in out.stdout
    refused, error = out.stderr.splitlines()
    assert refused.startswith(f"{ADDRESSES[0]} refused {other}: ")
    assert error.startswith(f"error: no peer answered well for {other}: ")
    scripted = json.loads(mizu("--json", "pull", "--from", ADDRESSES[0]).stdout)
    assert sorted((r["subscription"], r["status"]) for r in scripted["results"]) == sorted(
        [(news, "up-to-date"), (other, "refused")])


def test_push_says_why(mizu: Mizu, peers: dict[str, Serve], repo_dir: Path) -> None:
    follower, stranger = Repository.memory(), Repository.memory()
    subscriptions.subscribe(follower, QUERY)
    peers[ADDRESSES[0]], peers[ADDRESSES[1]] = serving(follower), serving(stranger)
    mizu("put", input='{"feed": "news", "title": "from the cli"}')
    sub = subscribe(mizu)
    pushed = mizu("--json", "push", "--to", ADDRESSES[0], "--to", ADDRESSES[1])
    assert pushed.code == 0, pushed.stderr
    assert results(pushed.stdout) == [(ADDRESSES[0], sub, "pushed"), (ADDRESSES[1], sub, "not-tracked")]
    assert pushed.stderr == f"{ADDRESSES[1]} does not track {sub}\n"  # a failure: printed with --json too
    again = mizu("push", "--to", ADDRESSES[0])
    assert again.code == 0 and again.stderr == f"up to date with {ADDRESSES[0]} for {sub}\n"
    alone = run_mizu("push", "--to", ADDRESSES[1], cwd=repo_dir)
    assert alone.code == 4 and alone.stderr.startswith(f"error: no peer answered well: {IDS[1]} does not track {sub}")
