"""An app as a test: the image gallery of the original design, through the command line.

The gallery is one stream message holding named queries. Users publish signed `join`
messages pointing at it, the admin publishes `kick`s, users publish and redact
submissions; the stream's queries answer "who is in" and "what did this user submit".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Mizu

SIGNED_BY = "$$signatures"


def stream(admin_key: str) -> dict:
    joined = {"@id": "?join", "type": "join", "gallery": {"$ref": "#"}, "user_name": "?user",
              SIGNED_BY: {"key": "?member"}}
    return {
        "name": "holiday pictures",
        "fragments": {"joined": joined},
        "get_users": {
            "@select": "?user",
            "@where": {
                "@graph": {"$include": "#/fragments/joined"},
                "@not": {"type": "kick", "gallery": {"$ref": "#"}, "user_name": "?user",
                         SIGNED_BY: {"key": admin_key}},
            },
            "@orderBy": "?user",
        },
        "get_submissions": {
            "@select": ["?title", "?image"],
            "@where": {
                "@graph": {"@id": "?sub", "type": "submission", "gallery": {"$ref": "#"},
                           "user_name": {"$var": "user_name"}, "title": "?title", "image": "?image"},
                "@not": {"type": "redact", "target": "?sub"},
            },
            "@orderBy": "?title",
        },
    }


@pytest.fixture
def keys(mizu: Mizu, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    out = {}
    for user in ("ann", "bob", "cat"):
        out[user] = folder / f"{user}.pem"
        out[user].write_text(mizu("keygen").stdout)
    return out


def put(mizu: Mizu, message: dict, key: Path | None = None) -> str:
    args = ["put"] + (["--pem", str(key)] if key else [])
    result = mizu(*args, input=json.dumps(message))
    assert result.code == 0, result.stderr
    return result.stdout.strip()


def test_gallery(mizu: Mizu, keys: dict[str, Path]) -> None:
    admin = json.loads(mizu("--json", "id").stdout)["public_key"]
    gallery = put(mizu, stream(admin))
    uri = f"https://mizu.stream/v0/view-raw/{gallery}"
    for user in ("ann", "bob", "cat"):
        put(mizu, {"type": "join", "gallery": {"$ref": uri}, "user_name": user}, keys[user])
    unsigned = {"type": "join", "gallery": {"$ref": uri}, "user_name": "eve"}
    assert mizu("put", "--no-sign", input=json.dumps(unsigned)).code == 0  # counts for nothing

    def users() -> list[str]:
        result = mizu("query", "--cid", f"{gallery}/get_users")
        assert result.code == 0, result.stderr
        return [row["?user"] for row in json.loads(result.stdout)]

    assert users() == ["ann", "bob", "cat"]
    put(mizu, {"type": "kick", "gallery": {"$ref": uri}, "user_name": "bob"})  # by the admin
    put(mizu, {"type": "kick", "gallery": {"$ref": uri}, "user_name": "cat"}, keys["ann"])  # not admin
    assert users() == ["ann", "cat"]

    image = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    sea = put(mizu, {"type": "submission", "gallery": {"$ref": uri}, "user_name": "ann",
                     "title": "sea", "image": {"$ref": image}}, keys["ann"])
    put(mizu, {"type": "submission", "gallery": {"$ref": uri}, "user_name": "ann",
               "title": "hills", "image": {"$ref": image}}, keys["ann"])
    put(mizu, {"type": "submission", "gallery": {"$ref": uri}, "user_name": "cat",
               "title": "cat", "image": {"$ref": image}}, keys["cat"])

    def submissions(user: str) -> list[str]:
        result = mizu("query", "--cid", f"{gallery}/get_submissions", "--param", f"user_name={user}")
        assert result.code == 0, result.stderr
        return [row["?title"] for row in json.loads(result.stdout)]

    assert submissions("ann") == ["hills", "sea"]
    assert submissions("cat") == ["cat"]
    put(mizu, {"type": "redact", "target": {"$ref": f"https://mizu.stream/v0/view-raw/{sea}"}}, keys["ann"])
    assert submissions("ann") == ["hills"]
    missing = mizu("query", "--cid", f"{gallery}/get_submissions")
    assert missing.code == 2 and "missing parameter 'user_name'" in missing.stderr
