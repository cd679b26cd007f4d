"""`mizu add`, `cat`, `ls`, `get` through the command line, and their bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.cli.conftest import Mizu
from tests.cli.test_put_view import assert_one_line_error


def make_site(root: Path) -> Path:
    site = root / "site"
    (site / "img").mkdir(parents=True)
    (site / "index.html").write_text("<p>hello</p>")
    (site / "img" / "ünïcode name.png").write_bytes(os.urandom(300_000))
    (site / "empty.txt").write_bytes(b"")
    return site


def test_add_ls_cat_get(mizu: Mizu, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("files")
    site = make_site(work)
    out = mizu("add", str(site))
    lines = out.stdout.splitlines()
    assert out.code == 0 and lines[-1].startswith("added bafybei") and lines[-1].endswith(" site")
    root = lines[-1].split()[1]
    assert mizu("add", "-Q", str(site)).stdout.strip() == root  # same content, same CID
    v0 = mizu("add", "-Q", "--cid-version", "0", str(site)).stdout.strip()
    assert v0.startswith("Qm")
    listing = mizu("ls", root).stdout.splitlines()
    assert [line.split(" ", 2)[2] for line in listing] == ["empty.txt", "img", "index.html"]
    assert json.loads(mizu("--json", "ls", root).stdout)[2]["name"] == "index.html"
    assert mizu("cat", f"{root}/index.html").stdout == "<p>hello</p>"
    assert mizu("cat", f"ipfs://{root}/empty.txt").stdout == ""
    dest = work / "restored"
    got = mizu("get", root, str(dest))
    assert got.code == 0 and got.stdout.strip() == f"wrote 3 files to {dest}"
    assert subprocess.run(["diff", "-r", str(site), str(dest)], check=False).returncode == 0
    assert mizu("fsck").code == 0


def test_file_bad_inputs(mizu: Mizu, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("files")
    site = make_site(work)
    root = mizu("add", "-Q", str(site)).stdout.strip()
    assert_one_line_error(mizu("add", str(work / "missing")), 2, "no such file")
    assert_one_line_error(mizu("add", "--raw-leaves", "--cid-version", "0", str(site)), 2, "raw leaves")
    assert_one_line_error(mizu("cat", root), 2, "is a folder")
    assert_one_line_error(mizu("ls", f"{root}/index.html"), 2, "is not a folder")
    assert_one_line_error(mizu("cat", f"{root}/nope"), 1, "no 'nope'")
    missing = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
    assert_one_line_error(mizu("cat", missing), 1, "not in the repository")
    message = mizu("put", "--no-sign", input='{"a": 1}').stdout.strip()
    assert_one_line_error(mizu("cat", message), 1, "not a file or folder")


def test_export_import_cli(mizu: Mizu, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    from tests.cli.conftest import run_mizu

    work = tmp_path_factory.mktemp("car")
    cid = mizu("put", input='{"author": "ann", "content": "car trip"}').stdout.strip()
    root = mizu("add", "-Q", str(make_site(work))).stdout.strip()
    archive = work / "out.car"
    assert mizu("export", "--car", cid, root, "-o", str(archive)).code == 0
    other = work / "other"
    assert run_mizu("init", str(other)).code == 0
    imported = run_mizu("--json", "import", str(archive), cwd=other)
    assert imported.code == 0 and json.loads(imported.stdout)["messages"] == 1
    assert run_mizu("cat", f"{root}/index.html", cwd=other).stdout == "<p>hello</p>"
    q = '{"@select": "?c", "@where": {"author": "ann", "content": "?c"}}'
    assert json.loads(run_mizu("query", q, cwd=other).stdout) == [{"?c": "car trip"}]
    assert_one_line_error(mizu("export", cid, "-o", str(archive)), 2, "--car")
    assert_one_line_error(mizu("export", "--car", "-o", str(archive)), 2, "CIDs or --all")
    garbage = work / "garbage.car"
    garbage.write_bytes(b"\x05hello")
    assert_one_line_error(mizu("import", str(garbage)), 1, "CAR")
    assert_one_line_error(mizu("import", str(work / "absent.car")), 2, "cannot open")


def test_add_dot_names_the_folder(tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    from tests.cli.conftest import run_mizu

    work = tmp_path_factory.mktemp("dot")
    repo_dir = work / "repo"
    assert run_mizu("init", str(repo_dir)).code == 0
    site = make_site(work)
    out = run_mizu("--repo", str(repo_dir), "add", ".", cwd=site).stdout.splitlines()
    assert out[-1].endswith(" site") and "added" in out[0] and " site/" in out[0]
