"""A SIGKILL in the middle of `mizu backup` leaves a repository that fsck passes."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import MIZU, mizu, wait_for


@pytest.mark.slow
def test_sigkill_during_backup(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    site = tmp_path_factory.mktemp("site")
    for i in range(200):
        (site / f"page{i:03d}.html").write_bytes(os.urandom(200_000))
    store = repo / ".mizu" / "store" / "data.mdb"
    size_before = store.stat().st_size
    proc = subprocess.Popen([MIZU, "backup", str(site)], cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Kill once some of the site's blocks are committed to the store.
    wait_for(lambda: proc.poll() is not None or store.stat().st_size > size_before + (10 << 20),
             60, "the backup to store its first blocks")
    assert proc.poll() is None, "the backup finished before it could be killed: make the site larger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    fsck = mizu("fsck", cwd=repo, check=False)
    assert fsck.returncode == 0, fsck.stderr.decode()
    # Backing up again completes the job.
    snapshot = mizu("backup", str(site), cwd=repo).stdout.decode().split()[-1]
    assert mizu("fsck", cwd=repo).returncode == 0
    assert mizu("get", snapshot, str(repo / "restored"), cwd=repo).returncode == 0
    assert len(os.listdir(repo / "restored")) == 200
