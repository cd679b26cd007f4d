"""A SIGKILL in the middle of `mizu backup` leaves a repository that fsck passes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


# Runs `mizu backup` in a process that SIGKILLs itself at the moment the snapshot is about
# to be published: after every page message, before the snapshot.
_KILLED_BEFORE_SNAPSHOT = """
import os, signal, sys
from mizu_core import Repository
real = Repository.publish
def publish(self, messages, *args, **kwargs):
    if isinstance(messages, dict) and messages.get("type") == "site-snapshot":
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, messages, *args, **kwargs)
Repository.publish = publish
from mizu_cli.main import main
main(sys.argv[1:])
"""


def test_sigkill_between_pages_and_snapshot(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    site = tmp_path_factory.mktemp("site")
    for i in range(50):
        (site / f"page{i:02d}.html").write_bytes(b"<p>%d</p>" % i)
    killed = subprocess.run([sys.executable, "-c", _KILLED_BEFORE_SNAPSHOT, "backup", str(site)],
                            cwd=repo, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    pages = mizu("log", "-q", cwd=repo).stdout.decode().split()
    assert len(pages) == 50  # every page, no snapshot
    assert mizu("fsck", cwd=repo).returncode == 0
    rerun = mizu("backup", str(site), cwd=repo).stdout.decode()
    assert "50 pages (50 new or changed, 50 of them published by an interrupted backup), 0 new file blocks" in rerun
    snapshot = rerun.split()[-1]
    after = mizu("log", "-q", cwd=repo).stdout.decode().split()
    assert after == [snapshot, *pages]  # nothing published again: only the snapshot is new
    assert mizu("get", snapshot, str(repo / "restored"), cwd=repo).returncode == 0
    assert sorted(os.listdir(repo / "restored")) == sorted(os.listdir(site))
