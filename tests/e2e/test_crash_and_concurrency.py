"""Crash safety and concurrent use of one repository, with real processes and signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import MIZU, mizu, ndjson, wait_for


def stored(repo: Path) -> int:
    return len(json.loads(mizu("log", "--format", "json", cwd=repo).stdout))


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_put(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    batch = 1_000
    mizu("config", "set", "core.batch-size", str(batch), cwd=repo)
    mizu("put", "--lines", cwd=repo, input=ndjson(10, "first"))
    big = tmp_path_factory.mktemp("input") / "big.ndjson"
    big.write_bytes(ndjson(20_000, "second"))
    proc = subprocess.Popen([MIZU, "put", "--lines", str(big)], cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Kill once storing is under way: the first batch is visible to a concurrent reader.
    wait_for(lambda: proc.poll() is not None or stored(repo) > 10, 120, "the first batch to commit")
    assert proc.poll() is None, "put finished before it could be killed: make the input larger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    fsck = mizu("fsck", cwd=repo, check=False)
    assert fsck.returncode == 0, fsck.stderr.decode()
    second = stored(repo) - 10
    assert 0 < second < 20_000 and second % batch == 0  # whole batches only
    # Publishing is idempotent: running the same put again completes the input.
    mizu("put", "--lines", str(big), cwd=repo)
    assert stored(repo) == 20_010
    assert mizu("fsck", cwd=repo).returncode == 0


@pytest.mark.slow
def test_readers_and_a_writer_at_once(repo: Path, tmp_path: Path) -> None:
    first = mizu("put", "--no-sign", cwd=repo, input=b'{"text": "Hello, world!"}').stdout.decode().strip()
    out = (tmp_path / "cids").open("wb")
    writer = subprocess.Popen([MIZU, "put", "--lines"], cwd=repo, stdin=subprocess.PIPE,
                              stdout=out, stderr=subprocess.PIPE)
    assert writer.stdin is not None
    writer.stdin.write(ndjson(10_000, "bulk"))
    writer.stdin.flush()
    # Readers run while the writer reads its input and while it commits its batches.
    readers = 0
    while writer.poll() is None or readers < 8:
        view = subprocess.run([MIZU, "view", first], cwd=repo, capture_output=True, timeout=30)
        log = subprocess.run([MIZU, "log", "-n", "3"], cwd=repo, capture_output=True, timeout=30)
        assert view.returncode == 0, view.stderr
        assert log.returncode == 0, log.stderr
        assert json.loads(view.stdout) == {"text": "Hello, world!"}
        readers += 1
        if readers == 4:
            writer.stdin.close()
        assert readers < 500, "the writer never finished"
    assert writer.wait(timeout=120) == 0, writer.stderr.read() if writer.stderr else ""
    out.close()
    assert len((tmp_path / "cids").read_bytes().split()) == 10_000
    assert mizu("fsck", cwd=repo).returncode == 0


def test_two_writers_at_once(repo: Path) -> None:
    procs = [
        subprocess.Popen([MIZU, "put", "--lines"], cwd=repo, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for i, proc in enumerate(procs):
        _, err = proc.communicate(ndjson(2_000, f"w{i}"), timeout=120)
        assert proc.returncode == 0, err
    assert len(json.loads(mizu("log", "--format", "json", cwd=repo).stdout)) == 4_000
    assert mizu("fsck", cwd=repo).returncode == 0


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_a_put_killed_while_preparing_leaves_no_workers(repo: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.ndjson"
    big.write_bytes(ndjson(40_000, "prepared on every core"))
    proc = subprocess.Popen([MIZU, "put", "--lines", str(big)], cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: set[int] = set()

    def working() -> bool:  # workers forked and busy with chunks
        workers.update(children(proc.pid))
        return any(cpu_ticks(w) > 20 for w in workers) or proc.poll() is not None

    wait_for(working, 60, "the put's workers to get to work")
    assert proc.poll() is None and workers, "put finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not any(alive(w) for w in workers), 10, "the workers to end with their parent")
    assert stored(repo) == 0  # killed before storing anything
