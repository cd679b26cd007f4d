"""`mizu subscribe CID/path`: a query inside a message (a stream's named query) as a feed."""

from __future__ import annotations

import json

from mizu_core.feeds.queries import pointer
from mizu_core.message import codec
from mizu_core.message.cid import CID
from tests.cli.conftest import Mizu
from tests.cli.test_put_view import assert_one_line_error

STREAM = {"name": "news", "queries": {
    "latest": {"@select": "?t", "@where": {"stream": {"$ref": "#"}, "title": "?t"}},
    "by": {"@select": "?t", "@where": {"author": {"$var": "who"}, "title": "?t"}}}}


def test_subscribe_to_a_query_inside_a_message(mizu: Mizu) -> None:
    stream = mizu("put", "--no-sign", input=json.dumps(STREAM)).stdout.strip()
    post = {"stream": {"$ref": f"https://mizu.stream/v0/view-raw/{stream}"}, "title": "hello"}
    mizu("put", input=json.dumps(post))
    out = mizu("subscribe", f"{stream}/queries/latest")
    assert out.code == 0 and out.stderr == ""
    sub = out.stdout.strip()
    assert sub == str(CID.for_block(codec.encode(pointer(CID.parse(stream), "queries/latest"))))
    assert json.loads(mizu("view", sub).stdout) == {
        "$include": f"https://mizu.stream/v0/view-raw/{stream}/queries/latest"}
    listing = json.loads(mizu("--json", "subscriptions").stdout)
    assert listing == [{"cid": sub, "records": 3, "root": listing[0]["root"], "active": True,
                        "query": f"{stream}/queries/latest", "asked": None}]
    assert mizu("subscriptions").stdout.endswith(f"\tquery at {stream}/queries/latest\n")
    again = mizu("subscribe", f"{stream}/queries/latest/")
    assert again.stdout.strip() == sub and "already subscribed" in again.stderr
    assert mizu("subscribe", sub).stdout.strip() == sub  # by the pointer's CID: the same feed
    assert mizu("unsubscribe", sub).code == 0


def test_a_message_not_here_is_waited_for(mizu: Mizu) -> None:
    absent = "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"
    out = mizu("subscribe", f"{absent}/queries/latest")
    assert out.code == 0
    assert out.stderr == f"message {absent} is not here yet: 'mizu pull' fetches it with the records\n"
    assert json.loads(mizu("--json", "subscriptions").stdout)[0]["active"] is False
    assert mizu("-q", "subscribe", f"{absent}/queries/other").stderr == ""


def test_bad_paths_are_refused(mizu: Mizu) -> None:
    stream = mizu("put", "--no-sign", input=json.dumps(STREAM)).stdout.strip()
    assert_one_line_error(mizu("subscribe", f"{stream}/queries/nope"), 1,
                          f"error: no query at 'queries/nope' in {stream}")
    assert_one_line_error(mizu("subscribe", f"{stream}/name"), 1,
                          f"error: 'name' in {stream} is not a query (no @select")
    assert_one_line_error(mizu("subscribe", f"{stream}/queries/by"), 1,
                          "error: missing parameter 'who': a feed's query takes no parameters ($var)")
    raw = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert_one_line_error(mizu("subscribe", f"{raw}/queries/latest"), 1, "is not a message CID")
    assert_one_line_error(mizu("subscribe", "nonsense/queries"), 2,
                          "'nonsense/queries' is neither a JSON query nor a CID[/PATH]")
    assert mizu("--json", "subscriptions").stdout.strip() == "[]"
