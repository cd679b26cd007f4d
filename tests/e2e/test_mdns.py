"""mDNS discovery between two `mizu serve` nodes that know nothing of each other.

Multicast must not leave the test, so both nodes run in a network namespace of their own
(`unshare --net`: only a loopback interface, on which multicast is switched on).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.e2e.conftest import MIZU, mizu, wait_for

ROOT = Path(__file__).resolve().parents[2]
QUERY = '{"@select": "?t", "@where": {"feed": "news", "title": "?t"}}'


def can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0


def scenario(work: Path) -> None:
    """Runs inside the namespace: a serves a feed, b subscribes; neither has a remote."""
    a, b = work / "a", work / "b"
    for repo in (a, b):
        repo.mkdir()
        mizu("init", cwd=repo)
    mizu("put", cwd=a, input=b'{"feed": "news", "title": "found by mDNS"}')
    sub = mizu("subscribe", QUERY, cwd=a).stdout.decode().strip()
    mizu("subscribe", sub, cwd=b)
    nodes = [subprocess.Popen([MIZU, "--quiet", "serve", "--listen", "/ip4/127.0.0.1/tcp/0"], cwd=repo,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for repo in (a, b)]
    try:
        def b_has_it() -> bool:
            rows = json.loads(mizu("query", "--format", "json", QUERY, cwd=b).stdout)
            return {"?t": "found by mDNS"} in rows

        wait_for(b_has_it, 30, "b to find a by mDNS and pull the feed")
    finally:
        for node in nodes:
            node.terminate()
            node.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.skipif(not can_unshare(), reason="needs unshare --net (root or user namespaces)")
def test_serving_nodes_find_each_other_by_mdns() -> None:
    with tempfile.TemporaryDirectory() as work:
        script = (
            "ip link set lo up && ip link set lo multicast on && "
            f"exec {sys.executable} -m tests.e2e.test_mdns {work}"
        )
        result = subprocess.run(["unshare", "--net", "sh", "-c", script], cwd=ROOT,
                                capture_output=True, timeout=120)
        assert result.returncode == 0, result.stderr.decode()[-2000:]


if __name__ == "__main__":
    scenario(Path(sys.argv[1]))
