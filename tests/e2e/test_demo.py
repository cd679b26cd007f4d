"""The README's main job runs as written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_script() -> None:
    result = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya" in out
    assert '"roses are red"' in out and "ok: 4 blocks, 4 messages" in out
    assert '{"?content":"violets are blue"}' in out
