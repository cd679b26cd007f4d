"""Files as UnixFS DAGs: root CIDs equal `ipfs add`'s (checked with Debian's ipfs_cid),
folders, round trips, gc and fsck with file blocks, and hostile folder nodes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import pytest

from mizu_core import Repository
from mizu_core.errors import InvalidMessage, MizuError
from mizu_core.files.tree import (
    Plan,
    UnsafeTree,
    add_path,
    list_directory,
    plan,
    read_file,
    remove_tree,
    resolve,
    restore,
)
from mizu_core.files.unixfs import CHUNK_SIZE
from mizu_core.message.cid import CID, DAG_PB
from mizu_core.message.dagpb import DIRECTORY, FILE, Link, encode_node, unixfs_data
from mizu_core.repo.upkeep import fsck, gc

IPFS_CID = shutil.which("ipfs_cid")
needs_ipfs_cid = pytest.mark.skipif(
    IPFS_CID is None and not os.environ.get("CI"),
    reason="Debian's ipfs-cid is not installed (.ci/run installs it)",
)


def ipfs_cid(path: Path) -> dict[str, str]:
    assert IPFS_CID is not None, "ipfs_cid is missing: install Debian's ipfs-cid"
    out = subprocess.run([IPFS_CID, str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


SIZES = {
    "empty": 0, "one byte": 1, "256 KiB": CHUNK_SIZE, "256 KiB + 1": CHUNK_SIZE + 1,
    "10 MiB": 10 << 20,
}


@needs_ipfs_cid
@pytest.mark.parametrize("name", list(SIZES))
def test_root_cids_equal_ipfs_add(repo: Repository, tmp_path: Path, name: str) -> None:
    data = os.urandom(SIZES[name])
    path = tmp_path / "f"
    path.write_bytes(data)
    root = add_path(repo, path)[-1].link.cid
    expected = ipfs_cid(path)
    assert str(root) == expected["CIDv0"] and str(root.to_v1()) == expected["CIDv1"]
    assert b"".join(read_file(repo, root)) == data


@needs_ipfs_cid
@pytest.mark.slow
def test_a_file_that_needs_a_second_level(tmp_path: Path) -> None:
    repo = Repository.memory()
    path = tmp_path / "big"
    data = os.urandom(176 * CHUNK_SIZE + 7)  # more than 174 chunks: two levels of links
    path.write_bytes(data)
    root = add_path(repo, path)[-1].link.cid
    assert str(root) == ipfs_cid(path)["CIDv0"]
    assert b"".join(read_file(repo, root)) == data


def test_raw_leaves(repo: Repository, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    # The raw CID of no bytes, as `ipfs add --cid-version=1` prints for an empty file.
    assert str(add_path(repo, empty, raw_leaves=True)[-1].link.cid) == (
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
    two = tmp_path / "two"
    two.write_bytes(b"x" * (CHUNK_SIZE + 1))
    root = add_path(repo, two, raw_leaves=True)[-1].link.cid
    assert root.version == 1 and root.codec == DAG_PB
    assert b"".join(read_file(repo, root)) == b"x" * (CHUNK_SIZE + 1)


def test_directory_vectors(repo: Repository, tmp_path: Path) -> None:
    # The empty folder: a dag-pb node with data 08 01 (UnixFS Directory) and no links;
    # every IPFS implementation knows it as QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn.
    (tmp_path / "empty").mkdir()
    assert str(add_path(repo, tmp_path / "empty")[-1].link.cid) == "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    # A folder holding one empty file "a", written out by hand: one link (field 2) with the
    # file's CID (field 1), name "a" (field 2) and Tsize 6 (field 3: the file's block is
    # 0a 04 08 02 18 00, six bytes), then the data (field 1) 08 01.
    empty_file = CID.parse("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")
    link = b"\x0a\x22" + empty_file.raw + b"\x12\x01a" + b"\x18\x06"
    block = b"\x12" + bytes([len(link)]) + link + b"\x0a\x02\x08\x01"
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a").write_bytes(b"")
    assert add_path(repo, tmp_path / "one")[-1].link.cid == CID.for_block(block, DAG_PB, version=0)


def test_folder_round_trip(repo: Repository, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "deep" / "deeper").mkdir(parents=True)
    (site / "index.html").write_text("<h1>hi</h1>")
    (site / "deep" / "été à la mer.txt").write_text("unicode")
    (site / "deep" / "with space").write_bytes(b"")
    (site / "deep" / "deeper" / "asset.bin").write_bytes(os.urandom(CHUNK_SIZE * 2 + 3))
    (site / "empty-folder").mkdir()
    added = add_path(repo, site)
    root = added[-1].link.cid
    assert [e.name for e in list_directory(repo, root)] == ["deep", "empty-folder", "index.html"]
    out = tmp_path / "out"
    assert restore(repo, root, out) == 4
    assert subprocess.run(["diff", "-r", str(site), str(out)], check=False).returncode == 0
    assert fsck(repo).ok


def test_hostile_folder_is_refused_whole(repo: Repository, tmp_path: Path) -> None:
    good = add_path(repo, _file(tmp_path, "ok", b"fine"))[-1].link
    for bad_name in ("../evil", "..", "a/b", ""):
        block = encode_node((Link(good.cid, "aaa", good.tsize), Link(good.cid, bad_name, good.tsize)),
                            unixfs_data(DIRECTORY))
        cid = CID.for_block(block, DAG_PB)
        with repo.store.writer() as txn:
            txn.put("blocks", cid.raw, block)
        out = tmp_path / f"out{len(bad_name)}"
        with pytest.raises(InvalidMessage, match="refusing the entry name"):
            restore(repo, cid, out)
        assert not out.exists()  # nothing written, not even the good entry


def test_gc_keeps_pinned_files_and_drops_unpinned(repo: Repository, tmp_path: Path) -> None:
    root = add_path(repo, _file(tmp_path, "f", os.urandom(CHUNK_SIZE * 3)))[-1].link.cid
    assert gc(repo).blocks == 0
    repo.unpin([root])
    assert gc(repo).blocks == 4  # three leaves and the root
    assert fsck(repo).ok


def test_adding_streams_in_bounded_memory(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo")
    path = _file(tmp_path, "big", b"")
    with open(path, "wb") as f:
        for _ in range(48):
            f.write(os.urandom(1 << 20))
    tracemalloc.start()
    root = add_path(repo, path)[-1].link.cid
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sum(len(c) for c in read_file(repo, root)) == 48 << 20
    assert peak < 24 << 20, f"peak {peak / 1e6:.1f} MB for a 48 MiB file"
    repo.close()


def _file(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def test_restore_leaves_nothing_behind_on_failure(repo: Repository, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "a").write_bytes(b"first")
    (site / "b").write_bytes(os.urandom(CHUNK_SIZE * 2))
    added = add_path(repo, site)
    root = added[-1].link.cid
    big = next(e for e in added if e.path == "b").link.cid
    leaf = decode_node_links(repo, big)[0]
    with repo.store.writer() as txn:
        txn.delete("blocks", leaf.to_v1().raw)
    report = fsck(repo)
    said = report.problems + getattr(report, "incomplete", [])
    assert any(str(leaf) in p for p in said)  # the pinned tree is incomplete
    out = tmp_path / "out"
    with pytest.raises(Exception, match="not in the repository"):
        restore(repo, root, out)
    assert not out.exists()
    assert not any(name.startswith(".out.partial") for name in os.listdir(tmp_path))


def test_restore_refuses_an_existing_destination(repo: Repository, tmp_path: Path) -> None:
    root = add_path(repo, _file(tmp_path, "f", b"x"))[-1].link.cid
    (tmp_path / "taken").mkdir()
    with pytest.raises(Exception, match="already exists"):
        restore(repo, root, tmp_path / "taken")


def decode_node_links(repo: Repository, cid: CID) -> list[CID]:
    from mizu_core.message.dagpb import decode_node

    return [link.cid for link in decode_node(repo.block(cid)).links]


def _mapped_kb(path: str) -> int:
    """Resident kB of this process's mappings of `path` (from /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as smaps:
        for line in smaps:
            if "-" in line.split(" ", 1)[0]:
                inside = line.rstrip().endswith(path)
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="Linux only")
def test_reading_a_large_file_does_not_keep_the_store_resident(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r")
    big = tmp_path / "big"
    big.write_bytes(os.urandom(96 << 20))
    root = add_path(repo, big)[-1].link.cid
    data_file = str(tmp_path / "r" / ".mizu" / "store" / "data.mdb")
    assert sum(len(chunk) for chunk in read_file(repo, root)) == 96 << 20
    # pages are let go every 32 MiB: what stays mapped is far below the 96 MiB read
    assert _mapped_kb(data_file) < 48 << 10, _mapped_kb(data_file)
    repo.close()


def test_an_unchanged_file_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mizu_core.files.tree as tree

    monkeypatch.setattr(tree, "_RACY_NS", 0)  # files made by the test are seconds old at most
    repo = Repository.init(tmp_path / "r")
    page = tmp_path / "page.html"
    page.write_bytes(os.urandom(300_000))
    first = add_path(repo, page)[-1].link

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was read again")

    monkeypatch.setattr(tree, "open", no_reading, raising=False)
    assert add_path(repo, page)[-1].link == first
    page.write_bytes(os.urandom(300_000))  # changed: its times and stat differ
    monkeypatch.undo()
    assert add_path(repo, page)[-1].link != first
    repo.close()


# -- hostile DAGs: built block by block, as a CAR or a peer could bring them ----------------

def put_block(repo: Repository, block: bytes, codec: int = DAG_PB) -> CID:
    cid = CID.for_block(block, codec)
    with repo.store.writer() as txn:
        txn.put("blocks", cid.raw, block, overwrite=False)
    return cid


def folder_block(entries: list[tuple[str, CID]]) -> bytes:
    """A UnixFS folder linking `entries` in the order given (not sorted: hostile nodes
    need not be)."""
    return encode_node(tuple(Link(cid, name, 1) for name, cid in entries), unixfs_data(DIRECTORY))


def put_folder(repo: Repository, entries: list[tuple[str, CID]]) -> CID:
    return put_block(repo, folder_block(entries))


def put_leaf(repo: Repository, data: bytes) -> CID:
    return put_block(repo, encode_node((), unixfs_data(FILE, data, len(data))))


def put_file_node(repo: Repository, parts: list[tuple[CID, int]], filesize: int | None = None) -> CID:
    sizes = tuple(size for _, size in parts)
    declared = sum(sizes) if filesize is None else filesize
    return put_block(repo, encode_node(tuple(Link(cid, "", size) for cid, size in parts),
                                       unixfs_data(FILE, b"", declared, sizes)))


def configured(tmp_path: Path, **values: int) -> Repository:
    """A repository on disk with `files.*` keys set (`max_entries=10` → files.max-entries)."""
    repo = Repository.init(tmp_path / "repo")
    for key, value in values.items():
        assert repo.config.repo_file is not None
        repo.config.repo_file.set("files." + key.replace("_", "-"), value)
    return repo


def walk_disk(path: Path) -> dict[str, bytes | None]:
    """relative path → bytes (None for a folder) of everything under `path` ("" → a file's
    bytes when `path` is one)."""
    if path.is_file():
        return {"": path.read_bytes()}
    found: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(path):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), path)] = None
        for name in files:
            full = os.path.join(folder, name)
            found[os.path.relpath(full, path)] = Path(full).read_bytes()
    return found


def test_a_folder_that_links_its_child_twice_is_bounded(tmp_path: Path) -> None:
    repo = configured(tmp_path, max_entries=100)
    cid = put_leaf(repo, b"x")
    for _ in range(40):  # 2^40 paths in 40 small blocks: the issue's 5 KB CAR
        cid = put_folder(repo, [("a", cid), ("b", cid)])
    assert [e.name for e in list_directory(repo, cid)] == ["a", "b"]
    out = tmp_path / "out"
    with pytest.raises(UnsafeTree, match=r"expands to (at least )?\d+ entries .* more than files.max-entries \(100\)"):
        restore(repo, cid, out)
    assert not out.exists()
    # A DAG is not a tree, and that is legitimate: within the bound, every path is written.
    small = put_leaf(repo, b"shared")
    for _ in range(3):
        small = put_folder(repo, [("a", small), ("b", small)])
    assert plan(repo, small) == Plan(entries=14, files=8, depth=3, longest=5, size=48)
    assert restore(repo, small, out) == 8
    written = walk_disk(out)
    assert len(written) == 14 and written["a/b/a"] == b"shared" and written["b/b/b"] == b"shared"
    repo.close()


def test_the_default_bound_refuses_the_issue_example_at_once(repo: Repository, tmp_path: Path) -> None:
    cid = put_leaf(repo, b"x")
    for _ in range(40):
        cid = put_folder(repo, [("a", cid), ("b", cid)])
    with pytest.raises(UnsafeTree, match=r"more than files.max-entries \(1000000\)"):
        restore(repo, cid, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["two files", "the same file twice", "a file and a folder"])
def test_two_entries_with_one_name_are_refused(repo: Repository, tmp_path: Path, kind: str) -> None:
    first = put_leaf(repo, b"one")
    second = {"two files": put_leaf(repo, b"two"), "the same file twice": first,
              "a file and a folder": put_folder(repo, [("inside", first)])}[kind]
    root = put_folder(repo, [("ok", first), ("x", first), ("x", second)])
    with pytest.raises(UnsafeTree, match="two entries are named 'x'"):
        restore(repo, root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(UnsafeTree, match="2 entries are named 'x'"):
        resolve(repo, root, "x")  # cat and ls of an ambiguous path: refused, not a guess


def test_names_too_long_for_the_file_system_are_refused(repo: Repository, tmp_path: Path) -> None:
    leaf = put_leaf(repo, b"long")
    fits = put_folder(repo, [("é" * 127 + "x", leaf)])  # 255 bytes: the most ext4 and tmpfs take
    assert restore(repo, fits, tmp_path / "fits") == 1
    for name in ("n" * 300, "é" * 128):  # 300 bytes; 256 bytes in 128 characters
        root = put_folder(repo, [("ok", leaf), (name, leaf)])
        out = tmp_path / f"out{len(name)}"
        with pytest.raises(UnsafeTree, match=r"bytes, longer than this file system allows \(255\)"):
            restore(repo, root, out)
        assert not out.exists()


def test_deep_nesting_is_bounded_and_written_without_recursion(tmp_path: Path) -> None:
    repo = configured(tmp_path)
    cid = put_leaf(repo, b"deep")
    for _ in range(1100):  # the issue's example: a RecursionError before
        cid = put_folder(repo, [("d", cid)])
    out = tmp_path / "out"
    with pytest.raises(UnsafeTree, match=r"nested deeper than files.max-depth \(256\)"):
        restore(repo, cid, out)
    assert not out.exists()
    assert repo.config.repo_file is not None
    repo.config.repo_file.set("files.max-depth", 2000)
    try:
        assert restore(repo, cid, out) == 1
        assert (out / "/".join(["d"] * 1100)).read_bytes() == b"deep"
    finally:
        remove_tree(out)  # pytest's clean-up (shutil.rmtree) recurses too deep for it
    assert not out.exists()
    repo.close()


def test_paths_longer_than_the_system_takes_are_refused(repo: Repository, tmp_path: Path) -> None:
    cid = put_leaf(repo, b"far")
    for i in range(20):
        cid = put_folder(repo, [(f"{i:02d}" + "p" * 250, cid)])  # 20 × 253 bytes > 4096
    with pytest.raises(UnsafeTree, match=r"longest path would be \d+ bytes .* more than this system allows"):
        restore(repo, cid, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_names_the_file_system_folds_together_leave_nothing(
        repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # On a case-insensitive file system "A" and "a" are one name: the second is created
    # exclusively, fails, and the whole copy is removed. Simulated here on any system.
    import mizu_core.files.tree as tree

    leaf = put_leaf(repo, b"case")
    root = put_folder(repo, [("A", leaf), ("a", leaf)])
    real_create = tree._create

    def folding_create(path: str) -> int:
        if path.endswith("/a") and os.path.exists(path[:-1] + "A"):
            raise FileExistsError(17, "File exists", path)
        return real_create(path)

    monkeypatch.setattr(tree, "_create", folding_create)
    (tmp_path / "here").mkdir()
    with pytest.raises(UnsafeTree, match="the same name as another entry"):
        restore(repo, root, tmp_path / "here" / "out")
    assert os.listdir(tmp_path / "here") == []


def test_a_file_that_links_one_part_many_times_is_as_large_as_it_declares(repo: Repository) -> None:
    leaf = put_leaf(repo, b"ab")
    middle = put_file_node(repo, [(leaf, 2)] * 174)
    root = put_file_node(repo, [(middle, 348)] * 3)
    assert b"".join(read_file(repo, root)) == b"ab" * 522
    assert plan(repo, root).size == 1044


@pytest.mark.parametrize("case", ["lying root", "lying part", "empty part", "links without sizes",
                                  "a folder inside", "not UnixFS"])
def test_files_whose_sizes_do_not_add_up_are_refused(repo: Repository, tmp_path: Path, case: str) -> None:
    leaf = put_leaf(repo, b"ab")
    if case == "lying root":
        root = put_file_node(repo, [(leaf, 2)] * 3, filesize=1 << 40)
    elif case == "lying part":
        root = put_file_node(repo, [(leaf, 2), (leaf, 5)])
    elif case == "empty part":
        root = put_file_node(repo, [(leaf, 2), (put_leaf(repo, b""), 0)])
    elif case == "links without sizes":
        root = put_block(repo, encode_node((Link(leaf, "", 2),), unixfs_data(FILE, b"", 2)))
    elif case == "a folder inside":
        root = put_file_node(repo, [(leaf, 2), (put_folder(repo, []), 4)])
    else:  # a dag-pb node with links and no Data: valid dag-pb, not a file
        root = put_block(repo, encode_node((Link(leaf, "", 2),), b"")[:-2])
    with pytest.raises(InvalidMessage, match=r"not a valid UnixFS file|without UnixFS data"):
        b"".join(read_file(repo, root))
    with pytest.raises(InvalidMessage):
        restore(repo, put_folder(repo, [("f", root)]), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_file_larger_than_the_free_space_is_refused(repo: Repository, tmp_path: Path) -> None:
    cid, size = put_leaf(repo, b"z" * 1024), 1024
    for _ in range(8):  # 174^8 KiB, consistent sizes: a valid file, and a huge one
        cid, size = put_file_node(repo, [(cid, size)] * 174), size * 174
    with pytest.raises(MizuError, match=f"its files hold {size} bytes, and only"):
        restore(repo, put_folder(repo, [("huge", cid)]), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_parent_folders_are_made_and_removed_on_failure(repo: Repository, tmp_path: Path) -> None:
    leaf = put_leaf(repo, b"p")
    assert restore(repo, leaf, tmp_path / "a" / "b" / "f") == 1
    missing = CID.for_block(b"not stored", DAG_PB)
    bad = put_folder(repo, [("ok", leaf), ("z", put_file_node(repo, [(leaf, 1), (missing, 3)]))])
    with pytest.raises(Exception, match="not in the repository"):
        restore(repo, bad, tmp_path / "c" / "d" / "out")
    assert not (tmp_path / "c").exists()
