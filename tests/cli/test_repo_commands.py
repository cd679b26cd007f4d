"""init, config, log, id, keygen, pin/unpin/gc and fsck through the command line."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from mizu_core.message.keys import PrivateKey
from tests.cli.conftest import Mizu, run_mizu


def test_init_is_harmless_to_repeat(tmp_path: Path) -> None:
    first = run_mizu("init", str(tmp_path))
    assert first.code == 0 and "Initialized empty" in first.stdout
    identity = tmp_path / ".mizu" / "identity.pem"
    assert stat.S_IMODE(os.stat(identity).st_mode) == 0o600
    before = identity.read_bytes()
    cid = run_mizu("put", input='{"a": 1}', cwd=tmp_path).stdout.strip()
    again = run_mizu("init", str(tmp_path))
    assert again.code == 0 and "Reinitialized existing" in again.stdout
    assert identity.read_bytes() == before
    assert run_mizu("view", cid, cwd=tmp_path).code == 0


def test_config_get_set_list_unset(mizu: Mizu) -> None:
    assert mizu("config", "set", "user.name", "ann").code == 0
    assert mizu("config", "set", "sync.interval", "600").code == 0
    assert mizu("config", "set", "--global", "user.name", "global-ann").code == 0
    assert mizu("config", "set", "--global", "user.email", "a@example.org").code == 0
    assert mizu("config", "get", "user.name").stdout == "ann\n"
    assert mizu("config", "get", "user.email").stdout == "a@example.org\n"
    assert mizu("config", "get", "--global", "user.name").stdout == "global-ann\n"
    listing = mizu("config", "list").stdout.splitlines()
    assert "user.name=ann" in listing and "sync.interval=600" in listing and "core.version=1" in listing
    assert mizu("config", "get", "nope.nothing").code == 1
    assert mizu("config", "unset", "user.name").code == 0
    assert mizu("config", "get", "user.name").stdout == "global-ann\n"
    bad = mizu("config", "set", "novalue", "x")
    assert bad.code == 2 and bad.stderr.startswith("error: invalid config key")


def test_log_formats(mizu: Mizu) -> None:
    cids = mizu("put", "--lines", "--no-sign", input='{"n": 1}\n{"n": 2}\n').stdout.split()
    text = mizu("log").stdout.splitlines()
    assert [line.split()[0] for line in text] == cids[::-1]
    assert "unsigned" in text[0] and '{"n":2}' in text[0]
    rows = [json.loads(line) for line in mizu("log", "--format", "ndjson").stdout.splitlines()]
    assert [r["cid"] for r in rows] == cids[::-1] and rows[0]["seq"] == 2
    assert json.loads(mizu("--json", "log", "-n", "1").stdout)[0]["cid"] == cids[1]
    assert mizu("log", "--format", "xml").code == 2


def test_id_matches_identity(mizu: Mizu, repo_dir: Path) -> None:
    key = PrivateKey.from_pem((repo_dir / ".mizu" / "identity.pem").read_bytes())
    shown = json.loads(mizu("--json", "id").stdout)
    assert shown == {"peer_id": key.public_key.peer_id(), "public_key": key.public_key.multibase()}
    assert shown["peer_id"].startswith("12D3KooW")


def test_keygen_types(mizu: Mizu) -> None:
    for key_type in ("ed25519", "rsa", "secp256k1", "ecdsa"):
        pem = mizu("keygen", "--type", key_type).stdout
        assert PrivateKey.from_pem(pem.encode()).public_key.multibase().startswith("z")
    bad = mizu("keygen", "--type", "dsa")
    assert bad.code == 2 and "unknown key type" in bad.stderr
    assert mizu("keygen", "--password").code == 2  # no terminal and no MIZU_KEY_PASSWORD


def test_pin_unpin_gc_fsck(mizu: Mizu) -> None:
    keep, drop = mizu("put", "--lines", input='{"keep": 1}\n{"drop": 1}\n').stdout.split()
    assert set(mizu("pin").stdout.split()) == {keep, drop}
    assert mizu("unpin", drop).code == 0
    gc = json.loads(mizu("--json", "gc").stdout)
    assert gc["blocks"] == 1 and gc["messages"] == 1 and gc["triples"] == 4
    assert mizu("view", drop).code == 1 and mizu("view", keep).code == 0
    fsck = mizu("fsck")
    assert fsck.code == 0 and fsck.stdout.startswith("ok: 1 blocks, 1 messages, 4 triples")
    missing = mizu("pin", "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya")
    assert missing.code == 1 and "not in the repository" in missing.stderr


def test_fsck_reports_damage(mizu: Mizu, repo_dir: Path) -> None:
    from mizu_core import Repository
    from mizu_core.message.cid import CID
    from mizu_core.repo.repository import find_repository

    cid = mizu("put", input='{"a": 1}').stdout.strip()
    with Repository.open(find_repository(str(repo_dir))) as repo, repo.store.writer() as txn:
        seq_key = bytes(txn.get("messages", CID.parse(cid).raw) or b"")[:8]  # its arrival
        txn.put("message_blocks", seq_key, b"\xa1\x61\x61\x02")
    result = mizu("fsck")
    assert result.code == 1
    assert f"problem: block {cid}: content does not hash to its CID" in result.stderr


def test_fsck_reports_a_lost_or_damaged_identity(mizu: Mizu, repo_dir: Path) -> None:
    identity = repo_dir / ".mizu" / "identity.pem"
    identity.write_text("not a key")
    damaged = mizu("fsck")
    assert damaged.code == 1 and "problem: identity: " in damaged.stderr
    identity.unlink()
    lost = mizu("fsck")
    assert lost.code == 1 and "problem: identity: cannot read the identity" in lost.stderr
    assert mizu("log").code == 0  # reading never needs the key


def test_usage_errors_exit_2_in_git_style(mizu: Mizu) -> None:
    for args in (["put", "--bogus"], ["view"], ["nosuchcommand"], ["config", "get"]):
        result = mizu(*args)
        assert result.code == 2, args
        assert result.stderr.startswith("error: ") and "\nhint: see 'mizu" in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 2


def test_a_mistyped_command_gets_suggestions_aliases_included(mizu: Mizu) -> None:
    for typo, suggested in (("vew-raw", "'view-raw'"), ("publsh", "'publish'"), ("qurey", "'query'")):
        result = mizu(typo)
        assert result.code == 2 and f"No such command '{typo}'" in result.stderr
        assert suggested in result.stderr.splitlines()[0], result.stderr


def test_a_command_that_breaks_is_not_called_missing(
    mizu: Mizu, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mizu_cli.main

    def broken(name: str, called: str) -> None:
        raise KeyError("some-key")  # a bug inside a command module, say

    monkeypatch.setattr(mizu_cli.main, "_build", broken)
    result = mizu("log")
    assert result.code == 1 and "No such command" not in result.stderr
    assert result.stderr.startswith("error: RuntimeError: cannot build command 'log'"), result.stderr


def test_config_get_of_a_section(mizu: Mizu) -> None:
    mizu("config", "set", "a.b.c", "1")
    result = mizu("config", "get", "a.b")
    assert result.code == 2 and "is a section" in result.stderr


def test_bad_settings_and_a_full_store_are_one_line_errors(mizu: Mizu, repo_dir: Path) -> None:
    refused = mizu("config", "set", "core.batch-size", "many")
    assert refused.code == 2 and refused.stderr == (
        "error: config core.batch-size must be an integer from 1 to 2147483648, not 'many'\n"
    )
    config = repo_dir / ".mizu" / "config.toml"
    config.write_text(config.read_text() + 'batch-size = "many"\n')  # in [core], by hand
    bad = mizu("put", input='{"a": 1}')
    assert bad.code == 1 and bad.stderr.startswith("error: config core.batch-size = 'many' must be an integer")
    assert "hint: mizu config set core.batch-size VALUE, or mizu config unset core.batch-size" in bad.stderr
    assert mizu("config", "set", "core.batch-size", "100").code == 0
    config.write_text(config.read_text() + 'batch-memory = "lots"\n')
    bad = mizu("put", input='{"a": 1}')
    assert bad.code == 1 and bad.stderr.startswith("error: config core.batch-memory = 'lots' must be an integer")
    assert json.loads(mizu("--json", "log", "--format", "json").stdout or "[]") == []  # nothing stored
    assert mizu("config", "unset", "core.batch-memory").code == 0
    assert mizu("config", "set", "store.map-size", "1048576").code == 0
    big = "".join(json.dumps({"n": i, "pad": "x" * 500}) + "\n" for i in range(4000))
    full = mizu("put", "--lines", input=big)
    assert full.code == 1 and "the store is full" in full.stderr and "store.map-size" in full.stderr
    assert mizu("config", "unset", "store.map-size").code == 0
    assert mizu("fsck").code == 0
