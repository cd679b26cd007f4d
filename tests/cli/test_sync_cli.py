"""subscribe, unsubscribe, subscriptions and remote through the command line (no network)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.conftest import Mizu

QUERY = '{"@select": "?t", "@where": {"feed": "news", "title": "?t"}}'
PEER = "/ip4/127.0.0.1/tcp/4737/p2p/12D3KooWBbjahBfovdxb6buTnpD1yYxT1BeztLHouetoppKqi8fX"


def test_subscribe_list_and_unsubscribe(mizu: Mizu) -> None:
    mizu("put", input='{"feed": "news", "title": "hello"}')
    first = mizu("subscribe", QUERY)
    assert first.code == 0
    sub = first.stdout.strip()
    again = mizu("subscribe", sub)  # by CID: the same subscription
    assert again.stdout.strip() == sub and "already subscribed" in again.stderr
    listing = json.loads(mizu("--json", "subscriptions").stdout)
    assert listing == [{"cid": sub, "records": 2, "root": listing[0]["root"], "active": True,
                        "query": None, "asked": None}]
    assert mizu("subscriptions").stdout == f"{sub}\t2 records\t{listing[0]['root']}\n"
    assert mizu("unsubscribe", sub).code == 0
    assert json.loads(mizu("--json", "subscriptions").stdout) == []
    missing = mizu("unsubscribe", sub)
    assert missing.code == 1 and missing.stderr.startswith("error: not subscribed")


def test_feeds_peers_asked_for_are_listed_with_asked(mizu: Mizu, repo_dir: Path) -> None:
    from mizu_core import Repository
    from mizu_core.message import codec
    from mizu_core.message.cid import CID
    from mizu_core.sync.server import Server

    mizu("put", input='{"feed": "news", "title": "hello"}')
    query = codec.encode(json.loads(QUERY))
    with Repository.open(repo_dir) as repo:  # as a serving node does when a peer asks
        (root,) = Server(repo).answer({"op": "roots", "subs": [CID.for_block(query)], "queries": [query]})["roots"]
    assert mizu("subscriptions").stdout == ""  # not a subscription
    (listed,) = json.loads(mizu("--json", "subscriptions", "--asked").stdout)
    assert listed["cid"] == str(CID.for_block(query)) and listed["root"] == str(root)
    assert listed["records"] == 2 and listed["query"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", listed["asked"])
    line = mizu("subscriptions", "--asked").stdout
    assert line == f"{listed['cid']}\t2 records\t{root}\tasked for by peers, last {listed['asked']}\n"


def test_subscribing_to_a_cid_not_here_waits_for_its_query(mizu: Mizu) -> None:
    absent = "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"
    out = mizu("subscribe", absent)
    assert out.code == 0 and "not here yet" in out.stderr
    assert json.loads(mizu("--json", "subscriptions").stdout)[0]["active"] is False


def test_bad_subscriptions_are_refused(mizu: Mizu) -> None:
    not_a_query = mizu("subscribe", '{"text": "hi"}')
    assert not_a_query.code == 1 and "not a query" in not_a_query.stderr
    assert mizu("subscribe", "nonsense").code == 2
    assert mizu("--json", "subscriptions").stdout.strip() == "[]"  # nothing was published


def test_remotes(mizu: Mizu) -> None:
    assert mizu("remote", "add", "origin", PEER).code == 0
    assert mizu("remote", "list").stdout == f"origin\t{PEER}\n"
    assert mizu("remote", "add", "origin", PEER).code == 2  # exists
    bad = mizu("remote", "add", "other", "/ip4/127.0.0.1/tcp/1")
    assert bad.code == 2 and "peer id" in bad.stderr
    assert mizu("remote", "remove", "origin").code == 0
    assert mizu("remote", "list").stdout == ""
    assert mizu("remote", "remove", "origin").code == 1


def test_pull_without_peers_or_subscriptions(mizu: Mizu) -> None:
    none = mizu("pull")
    assert none.code == 1 and "no subscriptions" in none.stderr
    mizu("subscribe", QUERY)
    nobody = mizu("pull")
    assert nobody.code == 4 and "no peers" in nobody.stderr
    assert mizu("pull", "--from", "nosuchremote").code == 2


def test_export_a_subscription_and_rebuild_it_elsewhere(mizu: Mizu, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.cli.conftest import run_mizu

    feed = [mizu("put", input=json.dumps({"feed": "news", "title": f"t{i}"})).stdout.strip() for i in range(3)]
    other = mizu("put", input='{"other": 1}').stdout.strip()
    sub = mizu("subscribe", QUERY).stdout.strip()
    car = tmp_path / "feed.car"
    assert mizu("export", "--car", "--subscription", sub, "-o", str(car)).code == 0
    fresh = tmp_path / "fresh"
    run_mizu("init", str(fresh))
    assert run_mizu("import", str(car), cwd=fresh).code == 0
    assert all(run_mizu("view", c, cwd=fresh).code == 0 for c in [*feed, sub])
    assert run_mizu("view", other, cwd=fresh).code == 1
    run_mizu("subscribe", sub, cwd=fresh)
    here = json.loads(mizu("--json", "subscriptions").stdout)[0]
    there = json.loads(run_mizu("--json", "subscriptions", cwd=fresh).stdout)[0]
    assert (there["root"], there["records"]) == (here["root"], here["records"])


def test_a_failed_export_leaves_no_file(mizu: Mizu, tmp_path) -> None:  # type: ignore[no-untyped-def]
    here = mizu("put", input=json.dumps({"title": "here"})).stdout.strip()
    absent = "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"  # a root not stored
    out = tmp_path / "x.car"
    failed = mizu("export", "--car", here, absent, "-o", str(out))
    assert failed.code == 1 and absent in failed.stderr
    assert list(tmp_path.glob("x.car*")) == []


def test_serve_refuses_a_bad_listen_address(mizu: Mizu) -> None:
    bad = mizu("serve", "--listen", "nonsense", "--no-mdns")
    assert bad.code == 2 and bad.stderr.startswith("error: not a multiaddr")
