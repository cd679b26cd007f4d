"""`.mizu/serve.json`: what a running `mizu serve` records of itself (its pid, its libp2p
addresses, its gateway's URLs) for scripts and tests to find it; removed when it stops."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from mizu_core.repo.repository import Repository

SERVE_FILE = "serve.json"


def record(repo: Repository, addresses: Sequence[str] | None, http: Sequence[str] = ()) -> None:
    """Write the record (None: remove it). An in-memory repository has none."""
    if repo.path is None:
        return
    path = repo.path / SERVE_FILE
    if addresses is None:
        path.unlink(missing_ok=True)
        return
    value = {"pid": os.getpid(), "addresses": list(addresses), "http": list(http)}
    temporary = path.with_name(SERVE_FILE + ".tmp")
    temporary.write_text(json.dumps(value) + "\n")
    temporary.replace(path)  # a reader never sees half of it
