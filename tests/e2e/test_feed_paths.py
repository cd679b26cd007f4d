"""A query inside a message, subscribed as `CID/path`, pulled from a peer that never
subscribed to it, followed live and re-shared (issue 23): real `mizu serve` and `mizu
pull` processes on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import mizu, wait_for
from tests.e2e.test_sync import Serving, has, init, pull, put_lines

pytestmark = pytest.mark.slow

LATEST = {"@select": ["?post", "?title"], "@where": {"@id": "?post", "stream": {"$ref": "#"}, "title": "?title"}}


def titles(repo: Path, target: str) -> list[str]:
    rows = json.loads(mizu("query", "--format", "json", "--cid", target, cwd=repo).stdout)
    return sorted(row["?title"] for row in rows)


def test_a_query_inside_a_message_pulled_from_a_peer_that_never_subscribed(tmp_path: Path) -> None:
    a, b = init(tmp_path, "a"), init(tmp_path, "b")
    (stream,) = put_lines(a, [json.dumps({"name": "news", "queries": {"latest": LATEST}})])
    (other,) = put_lines(a, [json.dumps({"name": "other", "queries": {"latest": LATEST}})])

    def posts(on: str, n: int, start: int = 0) -> list[str]:
        ref = {"$ref": f"https://mizu.stream/v0/view-raw/{on}"}
        return put_lines(a, [json.dumps({"stream": ref, "title": f"post {i:03}"}) for i in range(start, start + n)])

    news = posts(stream, 120)
    elsewhere = posts(other, 30)
    unrelated = put_lines(a, [json.dumps({"other": i}) for i in range(20)])
    target = f"{stream}/queries/latest"
    node = Serving(a)  # a subscribes to nothing
    try:
        subscribed = mizu("subscribe", target, cwd=b)
        sub = subscribed.stdout.decode().strip()
        assert subscribed.stderr.decode() == f"message {stream} is not here yet: 'mizu pull' fetches it with the records\n"
        mizu("remote", "add", "a", node.address, cwd=b)
        first = pull(b)
        assert first["peers"] == 1 and first["errors"] == [], first
        assert first["records"] == 121  # the posts and the stream (b published the pointer)
        assert titles(b, target) == titles(a, target) == [f"post {i:03}" for i in range(120)]
        assert has(b, stream) and all(has(b, cid) for cid in news[::11])
        assert not has(b, other) and not any(has(b, cid) for cid in [*elsewhere[::5], *unrelated[::5]])
        (listed,) = json.loads(mizu("--json", "subscriptions", cwd=b).stdout)
        assert listed["cid"] == sub and listed["active"] and listed["records"] == 122
        assert json.loads(mizu("--json", "subscriptions", cwd=a).stdout) == []  # a follows nothing
        # the same CID/path names the same feed on a: the one b asked it for
        assert mizu("subscribe", target, cwd=a).stdout.decode().strip() == sub

        posts(stream, 1, start=120)
        again = pull(b)
        assert again["records"] == 1 and again["errors"] == [], again
        assert titles(b, target)[-1] == "post 120"

        # b serves and follows it: a announces its new root on the pointer's topic, and b
        # pulls at once
        node_b = Serving(b)
        wait_for(lambda: any("connected to" in line for line in node_b.log), 10, "b to reach a")
        (new,) = posts(stream, 1, start=121)
        wait_for(lambda: has(b, new), 5, "b to have a's new post")
    finally:
        node.stop()

    # b re-shares it with a stopped: c, which also subscribes to CID/path without holding
    # the message, pulls it from b
    c = init(tmp_path, "c")
    try:
        assert mizu("subscribe", target, cwd=c).stdout.decode().strip() == sub
        mizu("remote", "add", "b", node_b.address, cwd=c)
        from_b = pull(c)
        # 122 posts and the stream (a, stopped, may be named by the DHT: an error, not a failure)
        assert from_b["peers"] >= 1 and from_b["records"] == 123, from_b
        assert titles(c, target) == titles(b, target) == [f"post {i:03}" for i in range(122)]
    finally:
        node_b.stop()
