"""Feeds anyone can follow (issue 23): a publisher that never subscribed serves its feed to
whoever sends the query; real `mizu serve` processes on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import mizu, wait_for
from tests.e2e.test_sync import QUERY, Serving, answers, has, init, pull, put_lines

pytestmark = pytest.mark.slow


def titles(repo: Path) -> list[str]:
    return sorted(row["?title"] for row in answers(repo))


def test_a_publisher_serves_a_feed_it_never_subscribed_to(tmp_path: Path) -> None:
    a, b, c = (init(tmp_path, n) for n in "abc")
    feed = put_lines(a, [json.dumps({"feed": "news", "title": f"post {i:03}"}) for i in range(200)])
    others = put_lines(a, [json.dumps({"other": i}) for i in range(50)])
    (secret,) = put_lines(a, [json.dumps({"feed": "news", "title": "secret", "secret": True})])
    mizu("config", "set", "filters.private", '{"secret": true}', cwd=a)
    node_a = Serving(a)  # a subscribes to nothing
    port_a = node_a.address.split("/tcp/")[1].split("/")[0]
    try:
        sub = mizu("subscribe", QUERY, cwd=b).stdout.decode().strip()
        mizu("remote", "add", "a", node_a.address, cwd=b)
        first = pull(b)
        assert first["peers"] == 1 and first["errors"] == [], first
        assert first["records"] == 200  # the whole feed: b holds its query already
        assert titles(b) == [f"post {i:03}" for i in range(200)]
        assert all(has(b, cid) for cid in feed[::13])
        assert not any(has(b, cid) for cid in others[::7])
        assert not has(b, secret)
        assert json.loads(mizu("--json", "subscriptions", cwd=a).stdout) == []  # a follows nothing
        node_b = Serving(b)
    finally:
        node_a.stop()
    try:
        # c knows the feed's CID only, and b alone: b follows it, so serves it
        mizu("subscribe", sub, cwd=c)
        mizu("remote", "add", "b", node_b.address, cwd=c)
        from_b = pull(c)
        assert from_b["peers"] >= 1 and from_b["records"] == 201, from_b  # and the query
        assert titles(c) == titles(b)

        # a comes back; it keeps the feed b asked for and announces it (the default), so b,
        # serving and following its subscription, has a's next post at once
        def connections() -> int:
            return sum("connected to" in line for line in node_b.log)

        before = connections()  # b may have reached a before it stopped
        node_a = Serving(a, f"/ip4/127.0.0.1/tcp/{port_a}")
        wait_for(lambda: connections() > before, 10, "b to reconnect to a")
        wait_for(lambda: any(f"announcing {sub}" in line for line in node_a.log), 5,
                 "a to announce the feed b asked for before it stopped")
        (new,) = put_lines(a, [json.dumps({"feed": "news", "title": "post 200"})])
        wait_for(lambda: has(b, new), 2, "b to have a's new post")
        assert "post 200" in titles(b) and not has(b, secret)
    finally:
        node_b.stop()
        node_a.stop()
