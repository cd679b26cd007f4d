"""A real `mizu serve` keeps answering pulls from other peers while a hostile peer sends it
the worst frames each limit allows: 4 MiB query frames holding a base58 "CID" that once
froze a node for 30 s, frames of 100,000 CIDs, a 4 MiB identity CID, and 4 MiB of garbage."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.e2e.conftest import MIZU, mizu, wait_for
from tests.e2e.test_sync import QUERY, ROOT, Serving, answers, init, put_lines

pytestmark = pytest.mark.slow


class HostilePeer:
    """A `tests/e2e/hostile_peer.py` process (`mode`: attack, stall, …): its lines (one per
    frame answered or refused) as they come."""

    def __init__(self, mode: str, address: str, sub: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.hostile_peer", mode, address, sub, *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.decode().strip())

    def stop(self) -> str:
        self.process.terminate()
        _, err = self.process.communicate(timeout=10)
        return err.decode()[-2000:]


def test_serve_keeps_answering_pulls_while_a_peer_sends_the_worst_frames(tmp_path: Path) -> None:
    a = init(tmp_path, "a")
    put_lines(a, [json.dumps({"feed": "news", "title": f"post {i}"}) for i in range(300)])
    sub = mizu("subscribe", QUERY, cwd=a).stdout.decode().strip()
    pullers = [init(tmp_path, f"b{i}") for i in range(3)]
    for repo in pullers:
        mizu("subscribe", sub, cwd=repo)
    node = Serving(a)
    attacker = HostilePeer("attack", node.address, sub)
    try:
        kinds = {"query", "query-many-iris", "have-many", "put-many", "identity-cid", "garbage"}
        # the attack is under way: every kind of frame has been answered or refused once
        wait_for(lambda: kinds <= {line.split()[0] for line in attacker.lines}, 120,
                 f"a round of hostile frames ({attacker.lines[-3:]}, {node.log[-3:]})")
        sent_before = len(attacker.lines)
        # three pulls at once from separate processes, with their usual time-out
        procs = [subprocess.Popen([MIZU, "pull", "--from", node.address, "--timeout", "5", "--json"],
                                  cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for repo in pullers]
        outputs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [e.decode() for _, e in outputs]
        for out, _ in outputs:
            report = json.loads(out)
            assert report["records"] == 301 and report["errors"] == [], report  # and the query
        assert attacker.process.poll() is None, attacker.stop()
        # the pulls ran while the attack went on
        wait_for(lambda: len(attacker.lines) > sent_before, 60, "the attack to go on")
        expected = answers(a)
        for repo in pullers:
            assert answers(repo) == expected
        assert any(line.startswith("dropped ") for line in node.log)  # garbage: stream closed
    finally:
        attacker.stop()
        node.stop()  # and it still stops cleanly, exit 0
    # nothing the attacker sent was stored
    assert mizu("fsck", cwd=a).returncode == 0
    assert len(answers(a)) == 300
