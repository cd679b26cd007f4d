"""dag-pb folders through `get`, `cat` and `ls`: DAGs generated block by block, as a CAR
or a peer could bring them (shared children, one child linked many times, duplicate
names, hostile names of every kind, deep chains, files whose sizes do not add up, nodes
that are not UnixFS, links to blocks not stored). Each is checked against a model built
from its description: `get` either refuses with one line and writes nothing (the
destination's folder is empty afterwards), or writes exactly the files and folders the DAG
holds, byte for byte, never more entries than files.max-entries; `cat` gives the bytes or
one line; `ls` lists the entries or says one line."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import event, given
from hypothesis import strategies as st

from mizu_core import Repository
from mizu_core.errors import MizuError
from mizu_core.files import tree
from mizu_core.files.tree import list_directory, read_file, remove_tree, restore
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR, DAG_PB, RAW
from mizu_core.message.dagpb import DIRECTORY, FILE, RAW_TYPE, Link, encode_node, unixfs_data
from tests.core.test_files import walk_disk
from tests.fuzz import fuzz_settings

MAX_ENTRIES = 60
MAX_DEPTH = 12
FREE = 1 << 20  # what the destination's disk is said to have free: larger files are refused
NAME_MAX = 255
CATTABLE = 1 << 20


@functools.cache
def repository() -> Repository:
    """One repository for every example (blocks are content-addressed: they only add up),
    with small bounds so that refusals and writes near them are both cheap."""
    folder = tempfile.mkdtemp(prefix="mizu-fuzz-folders-")
    repo = Repository.init(folder)
    atexit.register(shutil.rmtree, folder, True)
    atexit.register(repo.close)  # runs first
    assert repo.config.repo_file is not None
    repo.config.repo_file.set("files.max-entries", MAX_ENTRIES)
    repo.config.repo_file.set("files.max-depth", MAX_DEPTH)
    return repo


# -- the description of a DAG, and its model -------------------------------------------------

NAMES = st.one_of(
    st.sampled_from(["a", "b", "A", "index.html", "", ".", "..", "../x", "a/b", "a\\b", "x\0y", " ",
                     "\n", "é", "e\u0301", "-", ".hidden", "…"]),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10),
    st.integers(250, 260).map(lambda n: "n" * n),  # around NAME_MAX: 255 bytes
    st.integers(126, 129).map(lambda n: "é" * n),  # the same, in two-byte characters
)


@st.composite
def node_specs(draw: st.DrawFn, index: int) -> tuple[Any, ...]:
    """One node; links point to earlier nodes only (so shared children come naturally)."""
    def earlier() -> int:  # often one of the last few: stacks of fans and chains
        return draw(st.one_of(st.integers(max(0, index - 2), index - 1), st.integers(0, index - 1)))

    kinds = ["leaf", "raw", "junk", "missing", "folder"] + (
        ["file", "folder", "folder", "chain", "fan", "fan"] if index else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "leaf":
        data = draw(st.one_of(st.just(b""), st.binary(max_size=40)))
        declared = draw(st.one_of(st.none(), st.just(len(data)), st.integers(0, 1 << 62)))
        return ("leaf", data, declared, draw(st.sampled_from([FILE, RAW_TYPE])))
    if kind == "raw":
        return ("raw", draw(st.binary(min_size=1, max_size=40)))
    if kind == "junk":
        return ("junk", draw(st.sampled_from(["bad varint", "no data", "symlink", "hamt", "cbor"])))
    if kind == "missing":
        return ("missing", draw(st.binary(min_size=1, max_size=8)))
    if kind == "file":  # parts, each with the size its parent declares for it
        parts = draw(st.lists(st.tuples(st.integers(0, 10_000), st.one_of(st.none(), st.integers(0, 100))),
                              min_size=1, max_size=5))
        declared = draw(st.one_of(st.none(), st.none(), st.integers(0, 1 << 40)))
        return ("file", [(c % index, size) for c, size in parts], declared)
    if kind == "chain":  # n folders, each holding the next under one name
        return ("chain", earlier(), draw(st.integers(1, 20)), draw(NAMES))
    if kind == "fan":  # one child under k names: fans of fans expand fast
        child = earlier()
        return ("folder", [(f"{i}", child) for i in range(draw(st.integers(2, 9)))])
    entries = draw(st.lists(st.tuples(NAMES, st.integers(0, 10_000)), max_size=6)) if index else []
    return ("folder", [(name, c % index) for name, c in entries])


@st.composite
def dags(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    count = draw(st.integers(1, 24))
    specs = [draw(node_specs(i)) for i in range(count)]
    if draw(st.booleans()):  # a root that holds many of the nodes, under names that are fine
        chosen = draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=8, unique=True))
        specs.append(("folder", [(f"e{i}", i) for i in chosen]))
    return specs


@dataclass(frozen=True)
class Model:
    """What a node is, as the UnixFS rules make it: a valid file (size, bytes if small),
    a valid folder (entries along every path, files, depth, longest path, bytes), or
    refused (`ok` False)."""

    ok: bool
    folder: bool = False
    size: int = 0
    content: bytes | None = None
    height: int = 0  # the deepest file DAG in it: links from a file's root to its deepest part
    entries: int = 0
    depth: int = 0
    longest: int = 0


REFUSED = Model(False)


def _name_ok(name: str) -> bool:
    return (name not in ("", ".", "..") and not any(c in name for c in "/\\\0")
            and len(name.encode()) <= NAME_MAX)


@dataclass
class Built:
    cids: list[CID]  # of each spec
    models: list[Model]  # of each spec
    folders: dict[bytes, list[tuple[str, CID]]]  # the entries of every folder built
    files: dict[bytes, Model]  # every valid file built


def build(repo: Repository, specs: list[tuple[Any, ...]]) -> Built:
    """Store the blocks of `specs` (one transaction), and model each node."""
    cids: list[CID] = []
    models: list[Model] = []
    blocks: list[tuple[CID, bytes]] = []
    folders: dict[bytes, list[tuple[str, CID]]] = {}
    files: dict[bytes, Model] = {}

    def put(block: bytes, codec_: int = DAG_PB) -> CID:
        cid = CID.for_block(block, codec_)
        blocks.append((cid, block))
        return cid

    def folder(entries: list[tuple[str, int]], children: list[tuple[CID, Model]]) -> tuple[CID, Model]:
        cid = put(encode_node(tuple(Link(c, name, 1) for (name, _), (c, _) in zip(entries, children, strict=True)),
                              unixfs_data(DIRECTORY)))
        names = [name for name, _ in entries]
        folders[cid.to_v1().raw] = [(name, c) for name, (c, _) in zip(names, children, strict=True)]
        if not all(_name_ok(n) for n in names) or len(set(names)) != len(names) \
                or not all(m.ok for _, m in children):
            return cid, REFUSED
        return cid, Model(
            True, folder=True, size=sum(m.size for _, m in children),
            entries=sum(1 + m.entries for _, m in children),
            height=max((m.height for _, m in children), default=0),
            depth=max((1 + m.depth for _, m in children), default=0),
            longest=max((len(n.encode()) + (1 + m.longest if m.longest else 0)
                         for n, (_, m) in zip(names, children, strict=True)), default=0))

    for spec in specs:
        kind = spec[0]
        if kind == "leaf":
            _, data, declared, unixfs_type = spec
            cid = put(encode_node((), unixfs_data(unixfs_type, data, declared)))
            ok = declared is None or declared == len(data)
            model = Model(True, size=len(data), content=data) if ok else REFUSED
        elif kind == "raw":
            cid, model = put(spec[1], RAW), Model(True, size=len(spec[1]), content=spec[1])
        elif kind == "junk":
            cid = {"bad varint": lambda: put(b"\x12\xff"),
                   "no data": lambda: put(encode_node((Link(cids[0] if cids else put(b"x", RAW), "", 1),), b"")[:-2]),
                   "symlink": lambda: put(encode_node((), unixfs_data(4, b"/etc/passwd"))),
                   "hamt": lambda: put(encode_node((), unixfs_data(5))),
                   "cbor": lambda: put(codec.encode({"type": "site-snapshot", "root": "x"}), DAG_CBOR)}[spec[1]]()
            model = REFUSED
        elif kind == "missing":
            cid, model = CID.for_block(b"not stored " + spec[1], DAG_PB), REFUSED
        elif kind == "file":
            _, parts, declared = spec
            links = [(cids[i], models[i], size) for i, size in parts]
            sizes = tuple(m.size if size is None else size for _, m, size in links)
            total = sum(sizes) if declared is None else declared
            cid = put(encode_node(tuple(Link(c, "", 1) for c, _, _ in links), unixfs_data(FILE, b"", total, sizes)))
            ok = all(m.ok and not m.folder and m.size == s and s > 0 for (_, m, _), s in zip(links, sizes, strict=True)) \
                and total == sum(sizes)
            if ok:
                size = sum(sizes)
                content = b"".join(m.content or b"" for _, m, _ in links) if size <= CATTABLE and \
                    all(m.content is not None for _, m, _ in links) else None
                model = Model(True, size=size, content=content, height=1 + max(m.height for _, m, _ in links))
            else:
                model = REFUSED
        elif kind == "chain":
            _, child, n, name = spec
            cid, model = cids[child], models[child]
            for _ in range(n):
                cid, model = folder([(name, 0)], [(cid, model)])
        else:
            entries = spec[1]
            cid, model = folder(entries, [(cids[i], models[i]) for _, i in entries])
        if model.ok and not model.folder:
            files[cid.to_v1().raw] = model
        cids.append(cid)
        models.append(model)
    with repo.store.writer() as txn:
        for cid, block in blocks:
            txn.put("blocks", cid.to_v1().raw, block, overwrite=False)
    return Built(cids, models, folders, files)


def expected_tree(built: Built, cid: CID) -> dict[str, bytes | None]:
    """relative path → bytes (None: a folder) that `get` must write, from the description
    alone (the model says the DAG is valid and within the bounds)."""
    out: dict[str, bytes | None] = {}
    stack = [(cid, "")]
    while stack:
        current, path = stack.pop()
        entries = built.folders.get(current.to_v1().raw)
        if entries is not None:
            if path:
                out[path] = None
            stack.extend((c, f"{path}/{name}" if path else name) for name, c in entries)
        else:
            out[path] = built.files[current.to_v1().raw].content
    return out


def _one_line(error: MizuError) -> None:
    text = str(error)
    assert text and "\n" not in text and len(text) < 600, repr(text)


@fuzz_settings(120)
@given(dags())
def test_get_writes_exactly_the_dag_or_refuses(specs: list[tuple[Any, ...]]) -> None:
    repo = repository()
    built = build(repo, specs)
    root, model = built.cids[-1], built.models[-1]
    work = Path(tempfile.mkdtemp(prefix="mizu-fuzz-get-"))
    dest = work / "out"
    partial = Path(os.path.abspath(dest)).with_name(f".out.partial-{os.getpid()}")
    valid = (model.ok and model.entries <= MAX_ENTRIES and model.depth <= MAX_DEPTH
             and model.height <= MAX_DEPTH and model.size <= FREE
             and len(os.fsencode(str(partial))) + 1 + model.longest < 4096)
    try:
        with mock.patch.object(tree.shutil, "disk_usage", return_value=mock.Mock(free=FREE)):
            try:
                count = restore(repo, root, dest)
            except MizuError as e:
                _one_line(e)
                assert os.listdir(work) == [], "a refused get left something behind"
                assert not valid, f"refused a valid DAG: {e}"
                event("refused")
                return
        assert valid, "wrote a DAG that should have been refused"
        written = walk_disk(dest)
        assert written == expected_tree(built, root), "get wrote something else than the DAG holds"
        assert len(written) <= MAX_ENTRIES + 1
        assert count == sum(1 for v in written.values() if v is not None)
        event("written")
    finally:
        remove_tree(work)


@fuzz_settings(60)
@given(dags())
def test_cat_and_ls_give_the_bytes_or_one_line(specs: list[tuple[Any, ...]]) -> None:
    repo = repository()
    built = build(repo, specs)
    for cid, model in zip(built.cids, built.models, strict=True):
        try:
            entries = list_directory(repo, cid)
            assert model.ok is False or model.folder
            assert all(isinstance(e.name, str) for e in entries)
        except MizuError as e:
            _one_line(e)
            assert not (model.ok and model.folder)
        if model.ok and not model.folder and model.size > CATTABLE:
            continue
        try:
            data = b"".join(read_file(repo, cid))
        except MizuError as e:
            _one_line(e)
            assert not (model.ok and not model.folder and model.height <= MAX_DEPTH), f"refused a valid file: {e}"
            continue
        assert model.ok and not model.folder, "cat read what is not a valid file"
        assert data == model.content
