"""Global options (--json, --quiet, --verbose, --repo) mean the same before and after the
command, for every command that prints something (as kubo, gh and docker accept them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import Result, run_mizu

QUERY = '{"@select": "?t", "@where": {"title": "?t"}}'


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A repository with a signed message, a folder, a CAR, a subscription and a remote;
    every case runs on two copies of it, so that writes in one do not change the other."""
    root = tmp_path_factory.mktemp("base")
    repo = root / "repo"
    site = repo / "site"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<h1>hello</h1>")
    (site / "about.html").write_text("<p>about</p>")
    assert run_mizu("init", str(repo)).code == 0

    def ok(*args: str, input: str = "") -> str:
        result = run_mizu(*args, input=input, cwd=repo)
        assert result.code == 0, result.stderr
        return result.stdout.strip()

    message = ok("put", input='{"title": "hello", "body": "world"}')
    first = ok("backup", "-q", "site")
    (site / "about.html").write_text("<p>about us</p>")
    second = ok("backup", "-q", "site")
    folder = ok("add", "-Q", "site")
    ok("export", "--car", message, "-o", "message.car")
    ok("subscribe", QUERY)
    ok("remote", "add", "origin", "/ip4/127.0.0.1/tcp/4737/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
    return {"root": str(root), "message": message, "folder": folder, "first": first, "second": second}


# (command line, global options); --repo cases run from outside the repository.
CASES: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("log",), ("--json",)),
    (("log",), ("-q",)),
    (("put", "--no-sign"), ("--json",)),
    (("view", "{message}"), ("--repo", "{repo}")),
    (("view", "{message}/title"), ("--repo", "{repo}", "-v")),
    (("query", QUERY), ("--json",)),
    (("query", QUERY, "--format", "csv"), ("--repo", "{repo}")),
    (("config", "list"), ("--repo", "{repo}")),
    (("gc",), ("--json",)),
    (("gc",), ("--quiet",)),
    (("fsck",), ("--json",)),
    (("fsck",), ("-q",)),
    (("add", "site"), ("-q",)),
    (("cat", "{folder}/index.html"), ("--repo", "{repo}")),
    (("ls", "{folder}"), ("--json",)),
    (("get", "{folder}", "restored"), ("-q",)),
    (("export", "--car", "{message}", "-o", "again.car"), ("-q",)),
    (("import", "message.car"), ("--json",)),
    (("import", "message.car"), ("-q",)),
    (("id",), ("--json",)),
    (("subscribe", QUERY), ("-q",)),
    (("subscriptions",), ("--json",)),
    (("remote", "list"), ("--json",)),
    (("pull",), ("--json",)),
    (("backup", "--diff", "{first}", "{second}"), ("--json",)),
    (("init", "."), ("-q",)),
    (("view", "{message}"), ("--repo", "/nonexistent")),
]


def _run(base: dict[str, str], copy: str, line: list[str], outside: bool) -> Result:
    repo = Path(base["root"]) / copy
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(Path(base["root"]) / "repo", repo)
    fields = {**base, "repo": str(repo)}
    args = [arg.format(**fields) if arg != QUERY else arg for arg in line]
    cwd = Path(base["root"]) if outside else repo
    result = run_mizu(*args, input='{"title": "piped"}', cwd=cwd)
    return Result(result.code, result.stdout.replace(str(repo), "REPO"), result.stderr.replace(str(repo), "REPO"))


@pytest.mark.parametrize(("command", "options"), CASES, ids=lambda v: " ".join(v)[:40])
def test_global_options_after_the_command_mean_the_same(
    base: dict[str, str], command: tuple[str, ...], options: tuple[str, ...]
) -> None:
    outside = "--repo" in options
    before = _run(base, "before", [*options, *command], outside)
    after = _run(base, "after", [*command, *options], outside)
    assert after == before
    # The option does something: without it the command prints otherwise, or fails (but
    # query prints JSON anyway when its output is not a terminal, and a pull with no peer
    # to reach fails with the same line either way).
    plain = _run(base, "plain", list(command), outside)
    assert (plain == before) == (command[0] in ("query", "pull") and options == ("--json",))


def test_help_lists_the_global_options_a_command_uses() -> None:
    log = run_mizu("log", "--help").stdout
    options, global_options = log.split("Global options:")
    assert "--max-count" in options and "--json" not in options
    for flag in ("--json", "--quiet", "--repo", "--verbose"):
        assert flag in global_options
    cat = run_mizu("cat", "--help").stdout.split("Global options:")[1]
    assert "--repo" in cat and "--verbose" in cat and "--json" not in cat
    remote_list = run_mizu("remote", "list", "--help").stdout.split("Global options:")[1]
    assert "--json" in remote_list
    # add keeps its own -Q/--quiet; the global -q is there beside it.
    add = run_mizu("add", "--help").stdout
    assert "-Q, --quiet" in add and "  -q  " in add.split("Global options:")[1]


def test_unused_global_options_are_accepted_anywhere(tmp_path: Path) -> None:
    assert run_mizu("init", str(tmp_path)).code == 0
    (tmp_path / "note.txt").write_text("plain text")
    cid = run_mizu("add", "-Q", "note.txt", cwd=tmp_path).stdout.strip()
    before = run_mizu("--json", "cat", cid, cwd=tmp_path)
    after = run_mizu("cat", cid, "--json", cwd=tmp_path)
    assert before == after == Result(0, "plain text", "")


def test_options_after_a_double_dash_are_arguments(tmp_path: Path) -> None:
    assert run_mizu("init", str(tmp_path)).code == 0
    result = run_mizu("view", "--", "--json", cwd=tmp_path)
    assert result.code == 2 and "--json" in result.stderr


def test_the_repo_after_the_command_wins(tmp_path: Path) -> None:
    assert run_mizu("init", str(tmp_path / "here")).code == 0
    cid = run_mizu("put", "--no-sign", input='{"a": 1}', cwd=tmp_path / "here").stdout.strip()
    shown = run_mizu("--repo", "/nonexistent", "view", cid, "--repo", str(tmp_path / "here"), cwd=tmp_path)
    assert shown.code == 0 and shown.stdout == '{\n  "a": 1\n}\n'
