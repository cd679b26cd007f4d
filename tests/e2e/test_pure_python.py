"""Without the C speedups (MIZU_PURE_PYTHON=1, as where no C compiler built them) the
installed `mizu` gives byte for byte what it gives with them, and each reads the other's
repository. (The core tier runs again in pure Python in scripts/test.sh; this checks the
whole program, in real processes.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import MIZU

MESSAGES = (
    b'{"text": "Hello, world!"}\n'
    b'{"a": 1.5, "b": [3, "x", {"c": true}, null], "\xc3\xa9": "\xc3\xbc", "n": null,'
    b' "big": 18446744073709551615, "neg": -7, "tiny": 5e-324}\n'
    b'{"tags": ["z", "a", "m", "a"], "nested": {"deep": {"deeper": [1, 2.0, "3"]}}}\n'
)
QUERY = '{"@select": ["?s", "?p", "?o"], "@where": {"@id": "?s", "?p": "?o"}}'


def run(*args: str, cwd: Path, pure: bool, input: bytes | None = None) -> bytes:
    env = {k: v for k, v in os.environ.items() if k != "MIZU_PURE_PYTHON"}
    if pure:
        env["MIZU_PURE_PYTHON"] = "1"
    result = subprocess.run(args, cwd=cwd, env=env, input=input, capture_output=True, timeout=120)
    assert result.returncode == 0, f"{args} exited {result.returncode}: {result.stderr.decode()}"
    return result.stdout


def test_mizu_pure_python_turns_the_c_off(tmp_path: Path) -> None:
    code = "from mizu_core import speedups; print(speedups.native is None, speedups.disabled)"
    assert run(sys.executable, "-c", code, cwd=tmp_path, pure=True) == b"True True\n"


def _session(root: Path, pure: bool, pem: Path) -> dict[str, bytes]:
    """Publish, add a file, query and check a new repository, all in one mode."""
    root.mkdir()
    run(MIZU, "init", cwd=root, pure=pure)
    (root / "file.bin").write_bytes(bytes(range(256)) * 2000)  # two chunks
    return {
        "put": run(MIZU, "put", "--lines", "--pem", str(pem), cwd=root, pure=pure, input=MESSAGES),
        "put unsigned": run(MIZU, "put", "--lines", "--no-sign", cwd=root, pure=pure, input=MESSAGES),
        "add": run(MIZU, "add", "file.bin", cwd=root, pure=pure),
        "query": run(MIZU, "query", QUERY, "-f", "ndjson", cwd=root, pure=pure),
    }


@pytest.mark.slow
def test_pure_python_and_c_give_the_same_cids_and_rows(tmp_path: Path) -> None:
    pem = tmp_path / "key.pem"
    pem.write_bytes(run(MIZU, "keygen", cwd=tmp_path, pure=False))
    with_c = _session(tmp_path / "c", False, pem)
    pure = _session(tmp_path / "pure", True, pem)
    assert pure == with_c
    assert b"bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya" in pure["put unsigned"]
    # Each reads what the other wrote: the same keys in the same tables.
    for root, pure_reader in ((tmp_path / "c", True), (tmp_path / "pure", False)):
        assert run(MIZU, "query", QUERY, "-f", "ndjson", cwd=root, pure=pure_reader) == with_c["query"]
        assert b"ok:" in run(MIZU, "fsck", cwd=root, pure=pure_reader)
