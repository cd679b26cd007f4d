"""The config parser and `mizu config`, fuzzed: whatever key and value `config set` is
given, and whatever bytes a config.toml holds, every command either runs or fails with
one line (and a hint), and the hints' own `mizu config set`/`unset` always repair it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mizu_core.repo.config import KEYS, global_config_path
from tests.cli.conftest import Result, run_mizu
from tests.fuzz import fuzz_settings

INITIAL = "[core]\nversion = 1\n"
_TYPE_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzzed")
    assert run_mizu("init", str(folder)).code == 0
    return folder


def mizu(repo: Path, *args: str) -> Result:
    return run_mizu(*args, cwd=repo)


def one_line(result: Result) -> None:
    """A failure as the user must see it: `error:` and at most a `hint:`, no type name."""
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("error: "), result.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), result.stderr
    assert "Traceback" not in result.stderr and "run again with --verbose" not in result.stderr, result.stderr
    assert not _TYPE_NAME.search(lines[0]), result.stderr


def fresh(repo: Path) -> None:
    (repo / ".mizu" / "config.toml").write_text(INITIAL)
    global_config_path().unlink(missing_ok=True)
    for aside in (repo / ".mizu").glob("config.toml.broken*"):
        aside.unlink()


def works(repo: Path) -> Result:
    """`log` and a small `put`, which read the store's and the publish path's settings."""
    log = mizu(repo, "log", "-n", "1")
    if log.code != 0:
        return log
    return run_mizu("put", "--no-sign", cwd=repo, input='{"fuzz": 1}')


def repaired(repo: Path, failed: Result) -> None:
    """Follow the hints of failures, as a user would, until the commands work again."""
    for _ in range(12):
        one_line(failed)
        hint = failed.stderr.splitlines()[-1]
        if m := re.search(r"mizu config unset( --global)? (\S+)", hint):
            fix = mizu(repo, "config", "unset", *(["--global"] if m[1] else []), m[2])
        elif m := re.search(r"mizu config set( --global)? KEY VALUE", hint):
            fix = mizu(repo, "config", "set", *(["--global"] if m[1] else []), "user.repaired", "yes")
        else:
            raise AssertionError(f"no repair in the hint: {failed.stderr}")
        assert fix.code == 0, fix.stderr
        failed = works(repo)
        if failed.code == 0:
            return
    raise AssertionError(f"still failing after the hints: {failed.stderr}")


# Keys: those Mizu reads, unknown ones in its sections and in others, and odd text.
SECTIONS = sorted({k.split(".")[0] for k in KEYS} | {"user", "remote", "gc"})
NAME = st.text(st.sampled_from("abcz09_-.AZ é\n\x00["), min_size=0, max_size=12)
KEY = st.one_of(
    st.sampled_from(sorted(KEYS)),
    st.builds(lambda s, n: f"{s}.{n}", st.sampled_from(SECTIONS), NAME),
    st.text(max_size=20),
    st.integers(1, 60).map(lambda n: ".".join(["k"] * n)),  # tables nested that deep
)
NUMBERS = ["0", "-5", "1", "15", "1048575", "1048576", str(1 << 46), str((1 << 46) + 1), str(1 << 64),
           "9" * 30, "9" * 5000, "1.5", "0.001", "1e9", "nan", "inf", "-0", "007", "0x10", "true", "abc"]
VALUE = st.one_of(
    st.sampled_from(NUMBERS), st.text(max_size=40), st.integers().map(str),
    st.text(st.characters(blacklist_categories=()), max_size=10),  # lone surrogates too
)


@given(key=KEY, value=VALUE, use_global=st.booleans())
@fuzz_settings(60)
def test_config_set_accepts_or_refuses_in_one_line(repo: Path, key: str, value: str, use_global: bool) -> None:
    fresh(repo)
    before = (repo / ".mizu" / "config.toml").read_bytes()
    result = mizu(repo, "config", "set", *(["--global"] if use_global else []), key, value)
    if result.code != 0:
        assert result.code == 2, result.stderr
        one_line(result)
        assert (repo / ".mizu" / "config.toml").read_bytes() == before  # nothing written
        assert not global_config_path().exists()
    else:
        assert result.stderr == ""
        assert mizu(repo, "config", *(["--global"] if use_global else []), "get", key).code in (0, 2)
    after = works(repo)
    if after.code != 0:
        repaired(repo, after)
    listing = mizu(repo, "config", "list")
    assert listing.code == 0, listing.stderr


# config.toml: bytes at random, and TOML-like text made of pieces that matter to Mizu.
LINES = st.sampled_from([
    "[core]", "[store]", "[query]", "[files]", "[serve]", "[user]", "[store.map-size]", "[[core]]",
    "map-size = 0", "map-size = -5", 'map-size = "abc"', f"map-size = {1 << 64}", "map-size = 1.5",
    "map-size = 1048576", "map-size = true", "map-size = [1, 2]", "map-size = {a = 1}",
    "batch-size = 0", "batch-size = 100", 'batch-memory = "lots"', "version = 2", "version = 1",
    "timeout = -1", "timeout = 0.5", "timeout = nan", "max-entries = 0", "max-depth = 1e400",
    "store = 5", "core = []", 'x = 1979-05-27T07:32:00Z', "a = " + "[" * 400 + "]" * 400,
    "a = " + "[" * 31 + "]" * 31, "a = " + "[" * 33 + "]" * 33, "[" + ".".join(["t"] * 40) + "]",
    "recheck-interval = 0", 'listen = ["a", 1]', "key-file = 42", "name = \"\\u0000\"",
    "= 1", "[", "\x00", "\udcff", "\ufeff[core]", "\r", "",
])
TOML = st.one_of(
    st.lists(LINES, max_size=8).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogateescape")),
    st.binary(max_size=60),
)


@given(content=TOML, use_global=st.booleans())
@fuzz_settings(60)
def test_any_config_file_runs_or_is_repaired_by_its_hint(repo: Path, content: bytes, use_global: bool) -> None:
    fresh(repo)
    path = global_config_path() if use_global else repo / ".mizu" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    for args in (["config", "list"], ["config", "get", "store.map-size"], ["config", "get", "--global", "a.b"]):
        result = mizu(repo, *args)
        if result.code not in (0,) and not (args[1] == "get" and result.code == 1 and not result.stderr):
            one_line(result)
    after = works(repo)
    if after.code != 0:
        repaired(repo, after)
