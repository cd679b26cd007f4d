"""Deterministic benchmark data: blog-post messages as NDJSON, and their triples as N-Triples.

`messages(n, seed)` yields the same `n` distinct messages for the same seed, each with five
fields, a nested object and an array:
`{"author", "title", "tags": [3 strings], "stats": {"views": int, "score": float}, "body"}`.
`write_ntriples` writes exactly the triples Mizu indexes for the *unsigned* messages, using
Mizu's own mapping (`message_triples`, `to_nt`), so reference stores load the same data.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.message.triples import message_triples
from mizu_core.terms import to_nt

SEED = 20240601
_WORDS = ["river", "stone", "cloud", "signal", "garden", "lantern", "harbor", "meadow", "copper", "ember", "falcon", "glacier", "island", "juniper", "kettle", "ledger", "marble", "nectar", "orchard", "pepper", "quartz", "raven", "saddle", "timber", "umber", "velvet", "willow", "yonder", "zephyr", "anchor", "beacon", "cobalt", "delta", "echo", "fable", "grove", "hollow", "ivory", "jasper", "kindle", "lilac", "mosaic", "nimbus", "onyx", "prism", "quill", "ripple", "sable", "tundra"]
_AUTHORS = [f"author-{i:03d}" for i in range(200)]


def messages(n: int, seed: int = SEED) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for i in range(n):
        yield {
            "author": rng.choice(_AUTHORS),
            "title": f"Post {i}: " + " ".join(rng.choices(_WORDS, k=4)),
            "tags": rng.sample(_WORDS, 3),
            "stats": {"views": rng.randrange(1_000_000), "score": round(rng.uniform(0, 5), 4)},
            "body": " ".join(rng.choices(_WORDS, k=rng.randint(20, 60))) + ".",
        }


def write_ndjson(path: Path, n: int, seed: int = SEED) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for m in messages(n, seed):
            f.write(json.dumps(m, separators=(",", ":")) + "\n")


def write_ntriples(path: Path, msgs: Iterable[dict[str, Any]]) -> tuple[int, list[str]]:
    """Write the unsigned messages' triples; return (triple count, CIDs in order)."""
    count, cids = 0, []
    with open(path, "w", encoding="utf-8") as f:
        for m in msgs:
            cid = CID.for_block(codec.encode(m))
            cids.append(str(cid))
            triples = message_triples(cid, m)
            count += len(triples)
            f.write("".join(f"{to_nt(s)} {to_nt(p)} {to_nt(o)} .\n" for s, p, o in triples))
    return count, cids
