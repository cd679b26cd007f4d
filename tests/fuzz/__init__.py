"""Fuzzers: hypothesis over every front door that takes hostile input (queries, messages,
DAG-CBOR, CARs, folders, sync frames, config). Each asserts the contract: a documented
error (a MizuError, one line) or a correct answer, within the product's own bounds, with
nothing stored on failure.

CI runs a few examples of each, reproducibly; a long hunt runs many, at random:

    MIZU_FUZZ=hunt MIZU_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/fuzz -x
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

HUNT = os.environ.get("MIZU_FUZZ") == "hunt"


def fuzz_settings(ci_examples: int) -> settings:
    """`ci_examples` examples, the same each run; in a hunt, MIZU_FUZZ_EXAMPLES of them
    (default 100 times as many), new ones each run."""
    examples = int(os.environ.get("MIZU_FUZZ_EXAMPLES", ci_examples * 100)) if HUNT else ci_examples
    return settings(
        max_examples=examples, deadline=None, derandomize=not HUNT,
        database=settings().database if HUNT else None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
