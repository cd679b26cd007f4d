"""Files benchmark: `mizu add` and `mizu cat` on one large file, `mizu backup` on a site.

Large file: `size` bytes of seeded random bytes (default 1 GiB), generated once into
`CACHE` (`$TMPDIR/mizu-bench-files`) and read through once, untimed, so every command
below finds it in the page cache. Timed, each as a whole child process (start-up
included), one after the other: `sha256sum FILE` (the hashing floor: one read, one hash),
`ipfs_cid FILE` (Debian's ipfs-cid: the same UnixFS DAG, no store), `mizu add -Q FILE` in
a fresh repository (its CIDv1 is checked against ipfs_cid's "CIDv1"), then
`mizu cat ROOT` with its output sent to /dev/null. After the timings, an untimed
`mizu cat ROOT` piped into the benchmark checks that the bytes come back unchanged.

Site: `SITE_FILES` files (about `SITE_BYTES` bytes) of seeded random bytes, with web-like
names and varied sizes (mostly small pages, some images, a few large downloads) in nested
folders, generated once into `CACHE` too. `mizu backup SITE` runs in a fresh repository,
then again on the unchanged folder; the re-run must report "0 new file blocks".

Every child goes through `ingest._run`: peak RSS is its `ru_maxrss`, peak anonymous and
file-backed memory come from the /proc sampler. The data are generated in the calling
process, the children are spawned by a small helper (`python bench/files.py measure`), as
Linux counts the spawning process's memory in a child's `ru_maxrss` (see `run`); the
helper's own peak, the floor of that column, is reported. When a throughput target is missed
(`profile="slow"`, or always with "all"), `mizu add` on a `PROFILE_BYTES` file and one more
unchanged `mizu backup` run are profiled with cProfile, each in a child
(`python bench/files.py profile OUT.json MIZU-ARGS...`, run in the repository).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ingest import _run

MIZU = str(Path(sys.executable).with_name("mizu"))
SHA256SUM = "sha256sum"
IPFS_CID = "/usr/bin/ipfs_cid"
CACHE = Path(tempfile.gettempdir()) / "mizu-bench-files"
SIZE = 1 << 30  # the large file: 1 GiB
PROFILE_BYTES = 256 << 20  # the file `mizu add` is profiled on
SEED = 7
SITE_FILES = 10_000
SITE_BYTES = 500_000_000  # about 500 MB
SITE_VERSION = 1  # bump when the generator changes, so a stale cached site is not reused
MB = 1e6  # throughput is in MB/s of 10^6 bytes
_BLOCK = 8 << 20

# (extension, share of the files, median size in bytes): pages, styles and scripts, images,
# downloads; sizes are log-normal around the median, then scaled to SITE_BYTES in all.
_KINDS = (("html", 0.55, 12_000), ("css", 0.05, 20_000), ("js", 0.07, 30_000),
          ("png", 0.13, 60_000), ("jpg", 0.15, 120_000), ("pdf", 0.04, 600_000),
          ("zip", 0.01, 3_000_000))
_SECTIONS = ("about", "blog", "docs", "news", "products", "support", "events", "media",
             "people", "research", "shop", "static")


def parse_size(text: str) -> int:
    """Bytes from "1073741824", "1G", "1GiB", "256M", "512KiB" (binary multiples)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match or int(match[1]) == 0:
        raise ValueError(f"not a size: {text!r}")
    return int(match[1]) << (10 * " KMGT".index(match[2].upper() or " "))


def _size_label(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift:,} {unit}"
    return f"{n:,} bytes"


def _random_file(size: int, cache: Path) -> Path:
    """Seeded random bytes, written once; a later run with the same size reuses the file."""
    path = cache / f"random-{size}-s{SEED}.bin"
    if path.is_file() and path.stat().st_size == size:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".partial-{os.getpid()}")
    rng = random.Random(SEED)
    with open(partial, "wb") as f:
        for offset in range(0, size, _BLOCK):
            f.write(rng.randbytes(min(_BLOCK, size - offset)))
    os.replace(partial, path)
    return path


def _read_through(path: Path) -> None:
    """Read a file once, so the timed commands find it in the page cache."""
    buffer = bytearray(1 << 20)  # small: this runs in the measuring helper
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buffer):
            pass


def _site_plan(files: int, total: int) -> tuple[list[str], list[tuple[str, int]]]:
    """(folders, [(relative path, size)]) of the generated site, from SEED alone."""
    rng = random.Random(SEED)
    folders = [""]
    for section in _SECTIONS:
        folders.append(section)
        for i in range(rng.randint(4, 14)):
            sub = f"{section}/{section[:3]}-{i:02d}"
            folders.append(sub)
            for j in range(rng.choice((0, 0, 1, 2, 4))):
                deep = f"{sub}/part-{j}"
                folders.append(deep)
                if rng.random() < 0.3:
                    folders.append(f"{deep}/archive")
    weights = [1.0 / (1 + f.count("/")) for f in folders]  # shallower folders hold more
    extensions = [k[0] for k in _KINDS]
    kinds = dict((k[0], k[2]) for k in _KINDS)
    entries = []
    for i, (folder, ext) in enumerate(zip(
            rng.choices(folders, weights, k=files),
            rng.choices(extensions, [k[1] for k in _KINDS], k=files), strict=True)):
        size = kinds[ext] * math.exp(rng.gauss(0, 1.0))
        name = f"{'index' if ext == 'html' and i % 7 == 0 else ext}-{i:05d}.{ext}"
        entries.append((f"{folder}/{name}" if folder else name, size))
    scale = total / sum(size for _, size in entries)
    planned = [(path, max(1, round(size * scale))) for path, size in entries]
    return [f for f in folders if f], planned


def _site(files: int, total: int, cache: Path) -> tuple[Path, dict[str, Any]]:
    """The generated site (cached), and what it holds."""
    folder = cache / f"site-v{SITE_VERSION}-n{files}-b{total}-s{SEED}"
    site, done = folder / "site", folder / "complete.json"
    if done.is_file():
        return site, json.loads(done.read_text())
    if folder.exists():
        shutil.rmtree(folder)  # an interrupted generation
    folders, planned = _site_plan(files, total)
    rng = random.Random(SEED + 1)
    site.mkdir(parents=True)
    for relative in folders:
        (site / relative).mkdir(parents=True, exist_ok=True)
    for relative, size in planned:
        (site / relative).write_bytes(rng.randbytes(size))
    sizes = sorted(size for _, size in planned)
    facts = {"files": len(planned), "bytes": sum(sizes), "folders": len(folders),
             "depth": max(p.count("/") for p, _ in planned),
             "median_bytes": sizes[len(sizes) // 2], "max_bytes": sizes[-1],
             "over_one_chunk": sum(s > 256 * 1024 for s in sizes), "seed": SEED}
    done.write_text(json.dumps(facts) + "\n")
    return site, facts


def _tool(argv: list[str], path: Path, root: Path) -> tuple[dict[str, Any], str]:
    wall, memory, out = _run([*argv, str(path)], root)
    return {"seconds": wall, "mb_per_s": path.stat().st_size / MB / wall, **memory}, out


def _fresh_repo(root: Path, name: str) -> Path:
    repo = root / name
    repo.mkdir()
    _run([MIZU, "init", str(repo)], root)
    return repo


def _cat_sha256(repo: Path, cid: str) -> str:
    """sha256 of `mizu cat CID`, untimed: the bytes check."""
    env = {k: v for k, v in os.environ.items() if k != "MIZU_DIR"}
    digest = hashlib.sha256()
    with subprocess.Popen([MIZU, "cat", cid], cwd=repo, env=env, stdout=subprocess.PIPE) as p:
        assert p.stdout is not None
        while block := p.stdout.read(1 << 20):
            digest.update(block)
    if p.returncode:
        raise RuntimeError(f"mizu cat {cid} failed ({p.returncode})")
    return digest.hexdigest()


def _large_file(path: Path, root: Path) -> dict[str, Any]:
    size = path.stat().st_size
    _read_through(path)
    sha, out = _tool([SHA256SUM], path, root)
    sha256 = out.split()[0]
    ipfs, out = _tool([IPFS_CID], path, root)
    ipfs_cids = json.loads(out)
    repo = _fresh_repo(root, "add")
    add, out = _tool([MIZU, "add", "-Q"], path, repo)
    root_cid = out.strip()
    wall, memory, _ = _run([MIZU, "cat", root_cid], repo, stdout=subprocess.DEVNULL)
    cat = {"seconds": wall, "mb_per_s": size / MB / wall, **memory}
    cids_match = root_cid == ipfs_cids.get("CIDv1")
    if not cids_match:
        print(f"\n!!! CID MISMATCH: mizu add -Q gave {root_cid}, ipfs_cid's CIDv1 is "
              f"{ipfs_cids.get('CIDv1')} ({path}) !!!\n", file=sys.stderr, flush=True)
    bytes_match = _cat_sha256(repo, root_cid) == sha256
    if not bytes_match:
        print(f"\n!!! BYTES MISMATCH: `mizu cat {root_cid}` does not give back {path} !!!\n",
              file=sys.stderr, flush=True)
    return {"bytes": size, "path": str(path), "root": root_cid, "ipfs_cid": ipfs_cids,
            "checks": {"cids_match": cids_match, "cat_bytes_match": bytes_match},
            "sha256sum": sha, "ipfs_cid_tool": ipfs, "mizu_add": add, "mizu_cat": cat}


def _new_file_blocks(out: str) -> int | None:
    match = re.search(r"(\d+) pages \(\d+ new or changed\), (\d+) new file blocks", out)
    return int(match[2]) if match else None


def _backup(site: Path, facts: dict[str, Any], repo: Path) -> dict[str, Any]:
    wall, memory, out = _run([MIZU, "backup", str(site)], repo)
    pages = re.search(r"(\d+) pages ", out)
    return {"seconds": wall, "files_per_s": facts["files"] / wall,
            "mb_per_s": facts["bytes"] / MB / wall, "pages": int(pages[1]) if pages else None,
            "new_file_blocks": _new_file_blocks(out), "snapshot": out.split()[-1], **memory}


def _profile_child(out: Path, repo: Path, args: list[str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "MIZU_DIR"}
    subprocess.run([sys.executable, __file__, "profile", str(out), *args],
                   cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def run(size: int = SIZE, profile: str = "slow", cache: Path = CACHE,
        site_files: int = SITE_FILES, site_bytes: int = SITE_BYTES) -> dict[str, Any]:
    """Generate (or reuse) the data here, then measure from a small helper process.

    Linux counts the memory a child had before `exec` (the spawning process's) in its
    `ru_maxrss`, so a child spawned by a big process reports at least that process's peak.
    The children are therefore spawned by a fresh `python bench/files.py measure` helper
    that allocates little; its own peak, the floor of the peak RSS column, is reported.
    """
    large = _random_file(size, cache)
    site, facts = _site(site_files, site_bytes, cache)
    small = _random_file(PROFILE_BYTES, cache) if profile != "none" else None
    with tempfile.TemporaryDirectory(prefix="mizu-files-") as tmp:
        out = Path(tmp) / "files.json"
        params = {"large": str(large), "site": str(site), "facts": facts, "profile": profile,
                  "small": small and str(small)}
        subprocess.run([sys.executable, __file__, "measure", str(out), json.dumps(params)],
                       check=True)
        result: dict[str, Any] = json.loads(out.read_text())
    result["tools"] = _tools()
    return result


def _measure(params: dict[str, Any]) -> dict[str, Any]:
    """The helper: every timed child, in order; returns the results."""
    site, facts = Path(params["site"]), params["facts"]
    with tempfile.TemporaryDirectory(prefix="mizu-files-") as tmp:
        root = Path(tmp)
        large = _large_file(Path(params["large"]), root)
        _read_through_tree(site)
        repo = _fresh_repo(root, "backup")
        first = _backup(site, facts, repo)
        rerun = _backup(site, facts, repo)
        if rerun["new_file_blocks"] != 0:
            print(f"\n!!! the unchanged re-run of mizu backup stored "
                  f"{rerun['new_file_blocks']} new file blocks, not 0 !!!\n",
                  file=sys.stderr, flush=True)
        helper_mb = _own_peak_mb()

        add_ratio = large["mizu_add"]["mb_per_s"] / large["sha256sum"]["mb_per_s"]
        speedup = first["seconds"] / rerun["seconds"]
        slow = (add_ratio < 0.5 or large["mizu_cat"]["mb_per_s"] < 200 or speedup < 5)
        profiles: dict[str, Any] = {}
        profile = params["profile"]
        if profile == "all" or (profile == "slow" and slow):
            small = Path(params["small"])
            _read_through(small)
            profiles[f"mizu add -Q ({_size_label(small.stat().st_size)} file)"] = \
                _profile_child(root / "add.prof.json", _fresh_repo(root, "profile"),
                               ["add", "-Q", str(small)])
            profiles["mizu backup SITE (unchanged re-run)"] = _profile_child(
                root / "backup.prof.json", repo, ["backup", str(site)])

    return {"large": large, "site": facts,
            "backup": {"first": first, "rerun": rerun, "speedup": speedup},
            "add_over_sha256sum": add_ratio, "helper_peak_rss_mb": helper_mb,
            "profiles": profiles}


def _own_peak_mb() -> int:
    """This process's VmHWM: the peak of its own memory since exec (its RUSAGE_SELF
    ru_maxrss would include its spawner's), which is what its children's ru_maxrss include."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _read_through_tree(folder: Path) -> None:
    for parent, _dirs, names in os.walk(folder):
        for name in names:
            _read_through(Path(parent, name))


def _tools() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return "unknown"
        return done.stdout.splitlines()[0] if done.stdout else "unknown"

    return {"sha256sum": first_line([SHA256SUM, "--version"]),
            "ipfs_cid": "ipfs-cid " + first_line(["dpkg-query", "-W", "-f", "${Version}\n",
                                                  "ipfs-cid"])}


def _profile_main(out: str, args: list[str]) -> None:
    """The profile child: run one mizu command in process under cProfile."""
    import query
    from typer.main import get_command

    from mizu_cli.main import app

    command = get_command(app)  # the child runs in the repository (cwd)
    # A partial, not a lambda: it leaves no frame of its own in the profile.
    call = functools.partial(command.main, args=args, prog_name="mizu", standalone_mode=False)
    profile = query._profile(call, top=30)
    # typer's and click's dispatch frames wrap the command: leave them out of the top 10
    for key in profile:
        profile[key] = [e for e in profile[key] if not re.search(r"/(typer|click)/", e[0])][:10]
    Path(out).write_text(json.dumps(profile) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["profile"]:
        _profile_main(sys.argv[2], sys.argv[3:])
    elif sys.argv[1:2] == ["measure"]:
        Path(sys.argv[2]).write_text(json.dumps(_measure(json.loads(sys.argv[3]))) + "\n")
    else:
        sys.exit("usage (in a repository): python bench/files.py profile OUT.json MIZU-ARGS...; "
                 "the benchmark runs from `python bench/run.py --only files`")
