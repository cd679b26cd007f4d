"""Unsubscribing takes effect in a running `mizu serve` at once (issue 23, item 4), and a
new subscription is picked up without a restart; real processes on 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import mizu, wait_for
from tests.e2e.test_sync import QUERY, Serving, has, init, pull, put_lines

pytestmark = pytest.mark.slow

OTHER = '{"@select": "?n", "@where": {"name": "?n"}}'


def status(report: dict, peer: str) -> tuple[str, str | None]:
    """What came of the pull from `peer` (the DHT may name other providers too)."""
    (result,) = [r for r in report["results"] if r["peer"] == peer]
    return result["status"], result["reason"]


def test_unsubscribing_stops_announcing_and_answering_at_once(tmp_path: Path) -> None:
    b, c, before, after = (init(tmp_path, n) for n in ("b", "c", "before", "after"))
    posts = put_lines(b, [json.dumps({"feed": "news", "title": f"post {i}"}) for i in range(5)])
    sub = mizu("subscribe", QUERY, cwd=b).stdout.decode().strip()
    other = mizu("subscribe", OTHER, cwd=b).stdout.decode().strip()
    node_b = Serving(b)
    try:
        # c follows both feeds from b: it pulls on connecting, then only on b's
        # announcements (its re-check is an hour away)
        mizu("subscribe", sub, cwd=c)
        mizu("subscribe", other, cwd=c)
        mizu("config", "set", "serve.recheck-interval", "3600", cwd=c)
        mizu("remote", "add", "b", node_b.address, cwd=c)
        node_c = Serving(c)
        try:
            wait_for(lambda: has(c, posts[-1]), 20, "c to pull the feed from b")
            (announced,) = put_lines(b, [json.dumps({"feed": "news", "title": "announced"})])
            wait_for(lambda: has(c, announced), 10, "c to have b's post, announced")

            # b answers the feed as its own: a reader holding only its CID gets it
            mizu("subscribe", sub, cwd=before)
            assert status(pull(before, "--from", node_b.address), node_b.address)[0] == "pulled"

            mizu("unsubscribe", sub, cwd=b)
            unsubscribed = time.monotonic()
            wait_for(lambda: any(f"stopped announcing {sub}: unsubscribed" in line for line in node_b.log),
                     5, "b to leave the feed's topic")
            # within a look for changes (0.25 s) and the pass that finds it
            assert time.monotonic() - unsubscribed < 2, node_b.log

            # b's next post of the feed is not announced; one of the feed it still
            # follows is, and reaches c, after it
            (unannounced,) = put_lines(b, [json.dumps({"feed": "news", "title": "not announced"})])
            (marker,) = put_lines(b, [json.dumps({"name": "ann"})])
            wait_for(lambda: has(c, marker), 10, "c to have b's post of the other feed")
            assert not has(c, unannounced)

            # and b no longer answers it as its own: a reader that cannot send the
            # query (it holds the CID alone) is told b holds no records for it
            mizu("subscribe", sub, cwd=after)
            said, why = status(pull(after, "--from", node_b.address), node_b.address)
            assert said == "no-records" and why is not None
            assert why.endswith(f"holds no records for {sub} (its query is not here to send)")

            # a reader that sends the query is answered as for any feed peers ask for
            # (serve.asked-feeds, default announce): b announces it as such
            again = pull(before, "--from", node_b.address)
            assert status(again, node_b.address)[0] == "pulled", again  # the unannounced post
            wait_for(lambda: any(f"announcing {sub}, a feed peers asked for" in line for line in node_b.log),
                     5, "b to announce the feed as one peers asked for")
            # gc drops the feeds peers asked for: b stops announcing it, the same way
            mizu("gc", cwd=b)
            wait_for(lambda: any(f"stopped announcing {sub}: a feed peers asked for, dropped" in line
                                 for line in node_b.log), 5, "b to stop announcing the feed gc dropped")

            # subscribing again is picked up without a restart
            mizu("subscribe", sub, cwd=b)
            wait_for(lambda: any(f"announcing {sub}, subscribed" in line for line in node_b.log),
                     5, "b to follow the feed again")
            # b announces at once, though it joins the topic again only 11 s after leaving
            # it (node.REJOIN_DELAY); should gossipsub drop one announcement, each new post
            # is a new root, announced again
            deadline = time.monotonic() + 20
            while True:
                (back,) = put_lines(b, [json.dumps({"feed": "news", "title": f"back {time.monotonic()}"})])
                try:
                    wait_for(lambda back=back: has(c, back), 3, "c to have b's post, announced again")
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise AssertionError(("".join(node_b.log), "".join(node_c.log))) from None
        finally:
            node_c.stop()
    finally:
        node_b.stop()
