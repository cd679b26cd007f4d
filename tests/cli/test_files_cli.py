"""`mizu add`, `cat`, `ls`, `get` through the command line, and their bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from mizu_core.message.cid import CID, read_varint
from tests.cli.conftest import Mizu, run_mizu
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


# -- hostile folder DAGs (issue 21, class 4) and messages that pose as snapshots (7b) --------

def hostile_dags(repo_dir: Path) -> dict[str, str]:
    """The issue's examples, stored block by block as a CAR or a peer could bring them."""
    from mizu_core import Repository
    from tests.core.test_files import put_file_node, put_folder, put_leaf

    repo = Repository.open(repo_dir)
    try:
        leaf = put_leaf(repo, b"x")
        doubling = leaf
        for _ in range(40):
            doubling = put_folder(repo, [("a", doubling), ("b", doubling)])
        deep = leaf
        for _ in range(1100):
            deep = put_folder(repo, [("d", deep)])
        return {name: str(cid.to_v1()) for name, cid in {
            "doubling": doubling,
            "same name": put_folder(repo, [("a", leaf), ("a", put_leaf(repo, b"y"))]),
            "long name": put_folder(repo, [("n" * 300, leaf)]),
            "deep": deep,
            "file and folder": put_folder(repo, [("x", leaf), ("x", put_folder(repo, [("y", leaf)]))]),
            "lying file": put_file_node(repo, [(leaf, 1)] * 4, filesize=1 << 50),
            "file": put_file_node(repo, [(leaf, 1)] * 4),
        }.items()}
    finally:
        repo.close()


def test_get_refuses_hostile_folders_with_one_line(mizu: Mizu, repo_dir: Path, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    dags = hostile_dags(repo_dir)
    work = tmp_path_factory.mktemp("hostile")
    for name, expected in [("doubling", "more than files.max-entries (1000000)"),
                           ("same name", "two entries are named 'a'"),
                           ("long name", "longer than this file system allows (255)"),
                           ("deep", "nested deeper than files.max-depth (256)"),
                           ("file and folder", "two entries are named 'x'")]:
        dest = work / name.replace(" ", "-")
        assert_one_line_error(mizu("get", dags[name], str(dest)), 1, expected)
        assert not dest.exists(), name
    assert_one_line_error(mizu("cat", dags["lying file"]), 1, "declares 1125899906842624 bytes but holds 4")
    assert_one_line_error(mizu("cat", f"{dags['same name']}/a"), 1, "2 entries are named 'a'")
    assert mizu("cat", dags["file"]).stdout == "xxxx"
    assert [line.split(" ", 2)[2] for line in mizu("ls", dags["same name"]).stdout.splitlines()] == ["a", "a"]
    # the bounds are settings: within them, a DAG that links a folder twice writes it twice
    assert mizu("config", "set", "files.max-entries", "10").code == 0
    small = mizu("get", f"{dags['doubling']}/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a",
                 str(work / "small"))
    assert small.code == 0 and small.stdout.startswith("wrote 4 files")
    assert sorted(os.listdir(work / "small")) == ["a", "b"]
    assert_one_line_error(mizu("get", dags["doubling"], str(work / "big")), 1, "more than files.max-entries (10)")


def test_messages_typed_site_snapshot_that_are_not_one(mizu: Mizu, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("fake")
    root = mizu("add", "-Q", str(make_site(work))).stdout.strip()
    page = mizu("put", input='{"type": "page", "path": "p"}').stdout.strip()
    file = mizu("add", "-Q", str(work / "site" / "index.html")).stdout.strip()
    fakes = {
        "it has no root": {},
        "its root is not a CID link": {"root": root},
        "its root is not a CID link ": {"root": 42},
        f"its root {page} is not a folder": {"root": {"/": page}},
        f"its root {file} is not a folder": {"root": {"/": file}},
    }
    for why, fields in fakes.items():
        fake = mizu("put", input=json.dumps({"type": "site-snapshot", **fields})).stdout.strip()
        for command in (["ls", fake], ["cat", f"{fake}/index.html"], ["get", fake, str(work / "out")],
                        ["backup", "--diff", fake, fake]):
            assert_one_line_error(mizu(*command), 1, f"{fake} is not a site snapshot: {why.strip()}")
        assert not (work / "out").exists()
    # a root that is a folder, but not the rest: ls, cat and get need only the root
    for why, fields in {"its snapshot is not text": {"site": "s", "pages": []},
                        "its pages are not a list": {"site": "s", "snapshot": "x", "pages": 5},
                        "its pages are not all links to messages": {"site": "s", "snapshot": "x",
                                                                    "pages": [{"/": root}]}}.items():
        fake = mizu("put", input=json.dumps({"type": "site-snapshot", "root": {"/": root}, **fields})).stdout.strip()
        assert mizu("cat", f"{fake}/index.html").stdout == "<p>hello</p>"
        assert_one_line_error(mizu("backup", "--diff", fake, fake), 1, f"{fake} is not a site snapshot: {why}")


def test_import_of_a_damaged_or_cut_archive_fails_or_warns(mizu: Mizu, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    """Issue 21: damaged header roots made import store a folder unpinned, for gc to drop;
    an archive cut between sections imported in silence."""
    from tests.cli.conftest import run_mizu

    work = tmp_path_factory.mktemp("cut")
    root = mizu("add", "-Q", str(make_site(work))).stdout.strip()
    archive = work / "site.car"
    assert mizu("export", "--car", root, "-o", str(archive)).code == 0
    data = archive.read_bytes()
    raw = CID.parse(root).raw
    other = work / "other"
    assert run_mizu("init", str(other)).code == 0
    damaged = work / "damaged.car"
    damaged.write_bytes(data.replace(raw, raw[:-1] + bytes([raw[-1] ^ 1]), 1))
    result = run_mizu("import", str(damaged), cwd=other)
    assert_one_line_error(result, 1, "CAR root", "neither in the archive nor in the repository")
    assert run_mizu("--json", "fsck", cwd=other).stdout.count('"blocks": 0') == 1
    length, pos = read_varint(data, 0)
    length, at = read_varint(data, pos + length)  # the first section: the root
    cut = work / "cut.car"
    cut.write_bytes(data[: at + length])
    result = run_mizu("import", str(cut), cwd=other)
    assert result.code == 0 and "warning: incomplete: the roots reference" in result.stderr
    assert run_mizu("pin", cwd=other).stdout.split() == [root]
    fsck = run_mizu("--json", "fsck", cwd=other)
    assert fsck.code == 0 and json.loads(fsck.stdout)["incomplete"]
    assert run_mizu("import", str(archive), cwd=other).stderr == ""  # completed
    assert json.loads(run_mizu("--json", "fsck", cwd=other).stdout)["incomplete"] == []


def test_export_leaves_out_linked_blocks_not_here_and_import_reports_them(tmp_path: Path) -> None:
    held_elsewhere = "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"
    assert run_mizu("init", str(tmp_path / "a")).code == 0
    cid = run_mizu("put", input=f'{{"a": {{"/": "{held_elsewhere}"}}}}', cwd=tmp_path / "a").stdout.strip()
    exported = run_mizu("export", "--car", cid, "-o", "out.car", cwd=tmp_path / "a")
    assert exported.code == 0
    assert f"warning: incomplete: 1 linked block not in the repository, left out (the first: {held_elsewhere})" in exported.stderr
    assert run_mizu("init", str(tmp_path / "b")).code == 0
    imported = run_mizu("--json", "import", str(tmp_path / "a" / "out.car"), cwd=tmp_path / "b")
    assert imported.code == 0 and json.loads(imported.stdout)["missing"] == [held_elsewhere]
    assert run_mizu("fsck", cwd=tmp_path / "b").code == 0
