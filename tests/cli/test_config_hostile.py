"""Configuration that must never lock the user out (issue 21, class 8): bad values are
refused when set; a bad file (a bad value, or not TOML) fails the commands that read it
with one line naming the key or the file, and `mizu config` can always repair it,
without opening the store."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mizu_core.repo.config import KEYS, global_config_path
from tests.cli.conftest import Mizu, Result

LIMITS = f"an integer from {KEYS['store.map-size'].low} to {KEYS['store.map-size'].high}"


def one_line(result: Result, code: int) -> str:
    """The error line of a failure that is one line (and at most a hint)."""
    lines = result.stderr.splitlines()
    assert result.code == code, result.stderr
    assert lines[0].startswith("error: ") and len(lines) <= 2, result.stderr
    assert all(line.startswith("hint: ") for line in lines[1:]), result.stderr
    return lines[0]


def stored(repo_dir: Path) -> dict:
    return tomllib.loads((repo_dir / ".mizu" / "config.toml").read_text())


@pytest.mark.parametrize("value", ["0", "-5", "abc", str(1 << 64), "9" * 5000, "1048575", "1.5", "true", ""])
def test_a_map_size_that_would_lock_the_store_is_refused(mizu: Mizu, repo_dir: Path, value: str) -> None:
    before = stored(repo_dir)
    result = mizu("config", "set", "store.map-size", "--", value)
    line = one_line(result, 2)
    assert line.startswith(f"error: config store.map-size must be {LIMITS}, not "), line
    assert len(line) < 200  # a 5,000-digit value is not printed whole
    assert stored(repo_dir) == before
    assert mizu("log").code == 0


@pytest.mark.parametrize(("key", "value", "bad"), [
    ("core.batch-size", "0", True), ("core.batch-size", "2147483649", True), ("core.batch-size", "100", False),
    ("core.batch-memory", "-1", True), ("core.version", "2", True), ("core.version", "1", False),
    ("serve.recheck-interval", "0", True), ("serve.recheck-interval", "60", False),
    ("query.timeout", "-1", True), ("query.timeout", "nan", True), ("query.timeout", "1e3", True),
    ("query.timeout", "2.5", False), ("query.timeout", "0", False), ("files.max-depth", "0", True),
    ("files.max-depth", "5000", True), ("files.max-entries", "10", False),
])
def test_every_key_mizu_reads_has_a_range(mizu: Mizu, key: str, value: str, bad: bool) -> None:
    result = mizu("config", "set", key, "--", value)
    if bad:
        assert one_line(result, 2).startswith(f"error: config {key} must be ")
    else:
        assert result.code == 0, result.stderr
        assert mizu("config", "get", key).stdout == f"{value}\n"
    assert mizu("log").code == 0
    assert mizu("put", "--no-sign", input='{"a": 1}').code == 0


def test_values_are_stored_as_their_key_takes_them(mizu: Mizu, repo_dir: Path) -> None:
    for key, value in [("swarm.key-file", "42"), ("query.timeout", "2.5"), ("query.timeout", "7"),
                       ("user.big", str(1 << 64)), ("user.small", str((1 << 63) - 1)), ("user.flag", "true")]:
        assert mizu("config", "set", key, value).code == 0
    config = stored(repo_dir)
    assert config["swarm"]["key-file"] == "42"  # a file name, not the number 42
    assert config["query"]["timeout"] == 7
    assert config["user"] == {"big": str(1 << 64), "small": (1 << 63) - 1, "flag": True}
    assert mizu("config", "set", "query.timeout", "2.5").code == 0
    assert stored(repo_dir)["query"]["timeout"] == 2.5


def test_unknown_keys_of_mizus_sections_are_refused_others_kept(mizu: Mizu, repo_dir: Path) -> None:
    line = one_line(mizu("config", "set", "core.batch-sise", "10"), 2)
    assert line.startswith("error: unknown config key 'core.batch-sise' (section core has core.version, ")
    one_line(mizu("config", "set", "store.map-size.x", "10"), 2)
    for key in ("user.name", "remote.lab.address", "gc.auto", "tool.anything-at-all"):
        assert mizu("config", "set", key, "x").code == 0
    assert mizu("config", "unset", "core.batch-sise").code == 1  # unset takes any key


@pytest.mark.parametrize("key", ["a.b\n", "a.b\nc.d", "\na.b", "a. b", "a..b", "é.b", "a.b\x00"])
def test_keys_with_odd_characters_are_refused(mizu: Mizu, key: str) -> None:
    line = one_line(mizu("config", "set", key, "1"), 2)
    assert line.startswith("error: invalid config key")


def test_a_value_that_is_not_utf8_is_refused(mizu: Mizu, repo_dir: Path) -> None:
    # What a shell passes for `mizu config set user.name $'\xff'` (surrogateescape).
    line = one_line(mizu("config", "set", "user.name", "a\udcffb"), 2)
    assert line == "error: config user.name: the value is not valid UTF-8 text"
    assert "user" not in stored(repo_dir)


@pytest.mark.parametrize("text", ["map-size = 0", 'map-size = "abc"', f"map-size = {1 << 64}",
                                  "map-size = 1.5", "map-size = true", "map-size = [1]", "[store.map-size]"])
def test_a_bad_value_in_the_file_names_itself_and_config_repairs_it(mizu: Mizu, repo_dir: Path, text: str) -> None:
    path = repo_dir / ".mizu" / "config.toml"
    path.write_text(path.read_text() + ("" if text.startswith("[") else "[store]\n") + text + "\n")
    for command in (["log"], ["put", "--no-sign"], ["query", '{"@select": "?s", "@where": {"@id": "?s"}}']):
        failed = mizu(*command, input='{"a": 1}')
        line = one_line(failed, 1)
        assert line.startswith("error: config store.map-size = ") and f"must be {LIMITS}" in line
        assert failed.stderr.splitlines()[1] == (
            "hint: mizu config set store.map-size VALUE, or mizu config unset store.map-size (back to 68719476736)"
        )
    # config reads the files alone: it shows what is there and repairs it.
    assert mizu("config", "list").code == 0
    assert mizu("config", "get", "store.map-size").code in (0, 2)
    assert mizu("config", "set", "store.map-size", "1048576").code == 0
    assert mizu("log").code == 0
    assert mizu("config", "unset", "store.map-size").code == 0
    assert mizu("log").code == 0


def test_a_bad_value_in_the_global_file_says_global(mizu: Mizu) -> None:
    path = global_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[core]\nbatch-size = -5\n")
    failed = mizu("put", "--no-sign", input='{"a": 1}')
    one_line(failed, 1)
    assert "hint: mizu config set --global core.batch-size VALUE, or mizu config unset --global core.batch-size" in failed.stderr
    assert mizu("config", "unset", "--global", "core.batch-size").code == 0
    assert mizu("put", "--no-sign", input='{"a": 1}').code == 0


@pytest.mark.parametrize("content", [b"garbage [", b"[core]\nversion = 1\n[core]\n", b"\xff\xfe", b"a = " + b"[" * 2000])
@pytest.mark.parametrize("use_global", [False, True])
def test_a_file_that_is_not_toml_is_set_aside_by_config(
    mizu: Mizu, repo_dir: Path, content: bytes, use_global: bool
) -> None:
    path = global_config_path() if use_global else repo_dir / ".mizu" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    option = ["--global"] if use_global else []
    for command in (["log"], ["config", "list"], ["config", "get", "user.name"]):
        line = one_line(mizu(*command), 1)
        assert line.startswith(f"error: cannot use {path}: it "), line
    failed = mizu("log")
    assert failed.stderr.splitlines()[1] == (
        f"hint: edit it, or start a new one with 'mizu config set{' --global' if use_global else ''} KEY VALUE'"
    )
    repaired = mizu("config", "set", *option, "user.name", "ann")
    assert repaired.code == 0, repaired.stderr
    assert repaired.stderr.startswith(f"warning: {path} could not be used (it ")
    assert repaired.stderr.endswith("kept it as config.toml.broken and started a new one\n")
    assert path.with_name("config.toml.broken").read_bytes() == content
    assert mizu("log").code == 0
    assert mizu("config", "get", "user.name").stdout == "ann\n"
    if not use_global:
        assert stored(repo_dir)["core"] == {"version": 1}


def test_unset_also_sets_a_broken_file_aside(mizu: Mizu, repo_dir: Path) -> None:
    path = repo_dir / ".mizu" / "config.toml"
    path.write_text("[")
    (repo_dir / ".mizu" / "config.toml.broken").write_text("an earlier one")
    assert mizu("config", "unset", "store.map-size").code == 0
    assert (repo_dir / ".mizu" / "config.toml.broken-2").read_text() == "["
    assert (repo_dir / ".mizu" / "config.toml.broken").read_text() == "an earlier one"
    assert mizu("log").code == 0


def test_config_works_when_the_store_cannot_open(mizu: Mizu, repo_dir: Path) -> None:
    store = repo_dir / ".mizu" / "store" / "data.mdb"
    store.write_bytes(b"not an lmdb file" * 1000)
    assert one_line(mizu("log"), 1).startswith("error: cannot open store")
    assert mizu("config", "set", "user.name", "ann").code == 0
    assert mizu("config", "get", "user.name").stdout == "ann\n"
    assert mizu("config", "list").code == 0
    assert mizu("config", "unset", "user.name").code == 0


def test_nesting_is_bounded_in_keys_and_files(mizu: Mizu, repo_dir: Path) -> None:
    deep = ".".join(["k"] * 33)
    assert one_line(mizu("config", "set", deep, "1"), 2).endswith("more than 32 parts")
    assert mizu("config", "set", ".".join(["k"] * 32), "1").code == 0
    assert mizu("log").code == 0
    # A file nested deeper than the TOML writer can recurse: set aside, not a RecursionError.
    path = repo_dir / ".mizu" / "config.toml"
    path.write_text("[user]\na = " + "[" * 300 + "]" * 300 + "\n")
    assert one_line(mizu("log"), 1) == f"error: cannot use {path}: it nests deeper than 32 levels"
    assert mizu("config", "set", "user.b", "1").code == 0
    assert mizu("log").code == 0


def test_a_file_larger_than_any_config_is_not_read_whole(mizu: Mizu) -> None:
    path = global_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#" * (1 << 20) + "\n")
    assert one_line(mizu("log"), 1) == f"error: cannot use {path}: it is larger than 1048576 bytes"
    assert mizu("config", "unset", "--global", "user.name").code == 0  # set aside
    assert mizu("log").code == 0
