"""`mizu put` and `mizu view`: vectors, signatures, and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mizu_core import Repository
from mizu_core.repo.repository import find_repository
from tests.cli.conftest import Mizu, Result, run_mizu
from tests.conftest import RSA_VECTOR_CID, SPEC_VECTORS, rsa_vector, rsa_vector_text


def stored(repo_dir: Path) -> int:
    with Repository.open(find_repository(str(repo_dir))) as repo:
        return len(list(repo.log()))


def assert_one_line_error(result: Result, code: int, *fragments: str) -> None:
    assert result.code == code, result
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("error: ") and len(lines) <= 2, result.stderr
    assert all(line.startswith("hint: ") for line in lines[1:])
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("message", "cid"), SPEC_VECTORS)
def test_spec_vectors_put_and_view(mizu: Mizu, message: dict, cid: str) -> None:
    result = mizu("put", "--no-sign", input=json.dumps(message))
    assert (result.code, result.stdout) == (0, cid + "\n")
    assert json.loads(mizu("view", cid).stdout) == message


def test_signed_vector_verifies_and_keeps_its_cid(mizu: Mizu, repo_dir: Path) -> None:
    result = mizu("put", "--no-sign", input=rsa_vector_text())
    assert result.stdout == RSA_VECTOR_CID + "\n"
    assert json.loads(mizu("view", RSA_VECTOR_CID).stdout) == rsa_vector()
    assert mizu("fsck").code == 0


@pytest.mark.parametrize("field", ["content", "digest"])
def test_tampered_signature_stores_nothing(mizu: Mizu, repo_dir: Path, field: str) -> None:
    message = rsa_vector()
    if field == "content":
        message["content"] = "roses are reD"
    else:
        digest = message["$signatures"][0]["digest"]
        message["$signatures"][0]["digest"] = digest[:20] + ("x" if digest[20] != "x" else "y") + digest[21:]
    assert_one_line_error(mizu("put", input=json.dumps(message)), 1, "signature")
    assert stored(repo_dir) == 0


def test_repository_signature_verifies(mizu: Mizu, repo_dir: Path) -> None:
    cid = mizu("put", input='{"text": "signed"}').stdout.strip()
    message = json.loads(mizu("view", cid).stdout)
    key = json.loads(mizu("--json", "id").stdout)["public_key"]
    assert message["$signatures"] == [{"key": key, "digest": message["$signatures"][0]["digest"]}]
    message["text"] = "signeD"
    assert mizu("put", "--no-sign", input=json.dumps(message)).code == 1


def test_rsa_key_from_pem(mizu: Mizu, repo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    keydir = tmp_path_factory.mktemp("keys")
    pem = mizu("keygen", "--type", "rsa").stdout
    (keydir / "rsa.pem").write_text(pem)
    cid = mizu("put", "--pem", str(keydir / "rsa.pem"), input='{"by": "rsa"}').stdout.strip()
    log = json.loads(mizu("log", "--format", "json").stdout)
    assert log[0]["cid"] == cid and len(log[0]["signers"][0]) > 300  # an RSA-2048 key
    message = json.loads(mizu("view", cid).stdout)
    wrong = json.loads(mizu("view", cid).stdout)
    digest = wrong["$signatures"][0]["digest"]
    wrong["$signatures"][0]["digest"] = digest[:-3] + ("1" if digest[-3] != "1" else "2") + digest[-2:]
    assert_one_line_error(mizu("put", "--no-sign", input=json.dumps(wrong)), 1, "invalid signature")
    assert mizu("put", "--no-sign", input=json.dumps(message)).stdout.strip() == cid


def test_encrypted_pem(mizu: Mizu, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    keyfile = tmp_path_factory.mktemp("keys") / "k.pem"
    monkeypatch.setenv("MIZU_KEY_PASSWORD", "hunter2")
    keyfile.write_text(mizu("keygen", "--password").stdout)
    assert "ENCRYPTED" in keyfile.read_text()
    assert mizu("put", "--pem", str(keyfile), input='{"a": 1}').code == 0
    monkeypatch.delenv("MIZU_KEY_PASSWORD")
    assert mizu("put", "--pem", f"{keyfile},hunter2", input='{"a": 2}').code == 0
    assert_one_line_error(mizu("put", "--pem", f"{keyfile},wrong", input='{"a": 3}'), 1, "wrong password")
    notkey = keyfile.with_name("notkey.pem")
    notkey.write_text("hello\n")
    assert_one_line_error(mizu("put", "--pem", str(notkey), input='{"a": 4}'), 1, "not a PEM private key")


@pytest.mark.parametrize(
    ("payload", "fragments"),
    [
        (b'{"a": 1,,}', ["invalid JSON at line 1 column 9"]),
        (b'[1, 2]', ["must be a JSON object"]),
        (b'"text"', ["must be a JSON object"]),
        (b'{"a": "\xff\xfe"}', ["invalid UTF-8"]),
        (b'{"$foo": 1}', ["'$foo'"]),
        (b'{"q": {"$var": 7}}', ["$var", "string"]),
        (b'{"a": {"$include": "#/b"}, "b": {"$include": "#/a"}}', ["$include cycle"]),
        (json.dumps({"big": "x" * (1 << 20)}).encode(), ["over the 1 MiB limit"]),
        (b'{"n": 18446744073709551616}', ["does not fit in 64 bits"]),
        (b"", ["invalid JSON"]),
    ],
)
def test_bad_input_is_one_line_and_stores_nothing(
    mizu: Mizu, repo_dir: Path, payload: bytes, fragments: list[str]
) -> None:
    assert_one_line_error(mizu("put", input=payload), 1, "stdin: ", *fragments)
    assert stored(repo_dir) == 0


def test_lines_errors_give_the_column_within_the_line(mizu: Mizu) -> None:
    assert_one_line_error(mizu("put", "--lines", input='{"n": 1}\r\n{"n": 3\n'), 1, "line 2: invalid JSON at column 8")


def test_lines_batch_names_the_bad_line(mizu: Mizu, repo_dir: Path) -> None:
    ndjson = '{"n": 1}\n\n{"n": 2}\n{"n": 3,}\n{"n": 4}\n'
    assert_one_line_error(mizu("put", "--lines", input=ndjson), 1, "line 4: invalid JSON at column 9")
    assert stored(repo_dir) == 0
    result = mizu("put", "--lines", "--skip-invalid", input=ndjson)
    assert result.code == 1 and len(result.stdout.split()) == 3
    assert result.stderr.startswith("rejected line 4: invalid JSON")
    assert stored(repo_dir) == 3


def test_values_round_trip_through_view(mizu: Mizu) -> None:
    link = SPEC_VECTORS[0][1]
    deep: dict = {"leaf": True}
    for _ in range(200):
        deep = {"d": deep}
    message = {
        "unicode": "日本語 🌊 é \u0000 \"quoted\"", "big": 18446744073709551615, "neg": -18446744073709551616,
        "float": 0.1, "whole_float": 2.0, "tiny": 5e-324, "null": None, "link": {"/": link},
        "bytes": {"/": {"bytes": "aGVsbG8"}}, "list": [3, 1, [2]], "deep": deep, "empty": {},
    }
    cid = mizu("put", "--no-sign", input=json.dumps(message)).stdout.strip()
    shown = mizu("view", cid).stdout
    assert json.loads(shown) == message
    assert '"whole_float": 2.0' in shown
    assert json.loads(mizu("view", f"{cid}/deep/d/d/d").stdout)["d"]["d"]["d"]


def test_view_paths_and_uris(mizu: Mizu) -> None:
    target = mizu("put", "--no-sign", input='{"text": "Hello, world!"}').stdout.strip()
    cid = mizu("put", "--no-sign", input=json.dumps({"link": {"/": target}, "a": [{"b": 1}]})).stdout.strip()
    assert mizu("view", f"{cid}/a/0/b").stdout == "1\n"
    assert mizu("view", f"{cid}/link/text").stdout == '"Hello, world!"\n'
    assert mizu("view", f"https://mizu.stream/message/{cid}/a/0").stdout.split() == ["{", '"b":', "1", "}"]
    assert_one_line_error(mizu("view", f"{cid}/nope"), 1, "no 'nope'")
    assert_one_line_error(mizu("view", "bafyreiabc"), 2, "not a CID")
    missing = "bafyreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    assert_one_line_error(mizu("view", missing), 1, "not in the repository")


def test_update_view(mizu: Mizu) -> None:
    base = mizu("put", input='{"title": "one", "tags": ["x"]}').stdout.strip()
    head = mizu("put", input=json.dumps({"title": "two", "$prev": f"https://mizu.stream/v0/view-raw/{base}"})).stdout.strip()
    merged = {"title": ["one", "two"], "tags": "x"}
    assert json.loads(mizu("view", "--update", head).stdout) == merged
    assert json.loads(mizu("view", f"https://mizu.stream/v0/update/{head}").stdout) == merged
    orphan_parent = "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"
    orphan = mizu("put", input=json.dumps({"$prev": {"$ref": f"https://mizu.stream/v0/view-raw/{orphan_parent}"}})).stdout.strip()
    assert_one_line_error(mizu("view", "--update", orphan), 1, orphan_parent)


def test_file_argument_and_publish_alias(mizu: Mizu, repo_dir: Path) -> None:
    (repo_dir / "m.json").write_text(json.dumps(SPEC_VECTORS[1][0]))
    assert mizu("publish", "--no-sign", str(repo_dir / "m.json")).stdout.strip() == SPEC_VECTORS[1][1]
    assert_one_line_error(mizu("put", str(repo_dir / "absent.json")), 2, "cannot open")


def test_outside_a_repository(tmp_path: Path) -> None:
    for args in (["put"], ["view", SPEC_VECTORS[0][1]], ["log"], ["fsck"]):
        result = run_mizu(*args, input="{}", cwd=tmp_path)
        assert_one_line_error(result, 3, "not a mizu repository")
        assert "mizu init" in result.stderr


def test_repository_discovery(repo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = repo_dir / "a" / "b"
    sub.mkdir(parents=True)
    cid = run_mizu("put", "--no-sign", input='{"x": 1}', cwd=sub).stdout.strip()
    elsewhere = repo_dir.parent
    assert run_mizu("--repo", str(repo_dir), "view", cid, cwd=elsewhere).code == 0
    assert run_mizu("--repo", str(repo_dir / ".mizu"), "view", cid, cwd=elsewhere).code == 0
    monkeypatch.setenv("MIZU_DIR", str(repo_dir / ".mizu"))
    assert run_mizu("view", cid, cwd=elsewhere).code == 0
    assert run_mizu("--repo", str(sub), "log", cwd=elsewhere).code == 3


def test_put_refuses_what_signing_would_make_invalid(mizu: Mizu) -> None:
    """Issue 21: `{"$var": "x"}` was stored, and signing made it fail fsck for good."""
    for args in (["put"], ["put", "--no-sign"]):
        assert_one_line_error(mizu(*args, input='{"$var": "x"}'), 1, "$var placeholder")
    assert_one_line_error(mizu("put", input='{"a": {"$include": "#/$signatures"}}'), 1, "$signatures")
    assert mizu("log").stdout == "" and mizu("fsck").code == 0


def test_a_link_to_a_block_not_held_is_incomplete_not_damage(mizu: Mizu) -> None:
    absent = SPEC_VECTORS[0][1]
    cid = mizu("put", input=f'{{"cover": {{"/": "{absent}"}}}}').stdout.strip()
    result = mizu("fsck")
    assert result.code == 0 and result.stdout.startswith("ok: 1 blocks, 1 messages")
    assert f"incomplete: message {cid} links {absent}, which is not stored" in result.stderr
    report = json.loads(mizu("--json", "fsck").stdout)
    assert report["ok"] and report["problems"] == [] and len(report["incomplete"]) == 1
    assert mizu("-q", "fsck").stderr == ""
