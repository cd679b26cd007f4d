"""Native-code benchmark: what Mizu runs for its hot loops (the C of mizu_core/_native/,
or a library where one measured faster) against maintained libraries doing the same work,
and against the pure-Python fallback.

Each case runs over the same inputs: the messages the ingest benchmark publishes
(bench/datagen.py), signed the way `mizu put` signs them, their CIDs, their keys and
signatures in base58btc, and the terms of their triples. Every candidate's output is first
checked equal to Mizu's (byte for byte); then the candidates take turns, `ROUNDS` rounds
over all the inputs each, and the best round counts (the least disturbed by other
processes). Ops/s are per input; the ratio is a candidate's ops/s over Mizu's, the first
candidate of each case (> 1: faster).

A library that is not installed is reported as such (cbrrr is not a dependency of Mizu:
`pip install cbrrr` to measure it). Run as a script, or `python bench/run.py --only native`.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen

from mizu_core.errors import InvalidMessage
from mizu_core.message import cid as cid_module
from mizu_core.message import codec, triples
from mizu_core.message.cid import CID
from mizu_core.repo import index
from mizu_core.speedups import native

MESSAGES = 2_000
ROUNDS = 7

try:
    import libipld
except ImportError:  # a test dependency, not a runtime one
    libipld = None
try:
    import cbrrr
except ImportError:
    cbrrr = None


def _signed(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as `mizu put` signs them: a `$signatures` entry with an Ed25519 key
    (libp2p protobuf, as keys.py marshals it) and a 64-byte signature, both base58btc.
    The bytes are fixed stand-ins: encoding cost does not depend on their values."""
    out = []
    for i, m in enumerate(messages):
        key = b"\x08\x01\x12\x20" + hashlib.sha256(b"key%d" % (i % 50)).digest()
        signature = hashlib.sha512(b"sig%d" % i).digest()
        out.append({**m, "$signatures": [{"key": cid_module.multibase_b58(key),
                                          "digest": cid_module.multibase_b58(signature)}]})
    return out


def _cases(n: int) -> list[tuple[str, list[Any], dict[str, Callable[[Any], Any] | None]]]:
    """(case, inputs, {candidate: function of one input, or None if not installed});
    the first candidate is what Mizu runs."""
    assert native is not None
    unsigned = list(datagen.messages(n))
    signed = _signed(unsigned)
    encode_c = native.Encoder(CID, InvalidMessage)
    encoders: dict[str, Callable[[Any], Any] | None] = {
        "C (_speedups.Encoder)": encode_c,
        "libipld.encode_dag_cbor": libipld.encode_dag_cbor if libipld else None,
        "cbrrr.encode_dag_cbor": cbrrr.encode_dag_cbor if cbrrr else None,
        "Python (codec.py)": codec._encode_python,
    }
    raws = [CID.for_block(encode_c(m)).raw for m in signed]
    b58 = native.b58encode
    keys = [cid_module.multibase_decode(e["key"]) for m in signed for e in m["$signatures"]]
    sigs = [cid_module.multibase_decode(e["digest"]) for m in signed for e in m["$signatures"]]
    binary = [x for pair in zip(keys, sigs, strict=True) for x in pair]
    texts = ["z" + b58(x) for x in binary]
    term_lists = [triples.message_triples(CID(raw), m) for raw, m in zip(raws, signed, strict=True)]
    flat = [t for ts in term_lists for triple in ts for t in triple]
    new: dict[bytes, int] = {}
    for term in flat:
        new.setdefault(term, len(new) + 1)
    batches = [dict(list(new.items())[i : i + 5_000]) for i in range(0, len(new), 5_000)]
    hash_c = native.term_hash
    return [
        ("DAG-CBOR encode, unsigned message", unsigned, encoders),
        ("DAG-CBOR encode, signed message", signed, encoders),
        ("CID text (multibase base32)", raws, {
            "C (_speedups.base32)": lambda raw: "b" + native.base32(raw),
            "libipld.encode_multibase": (lambda raw: libipld.encode_multibase("b", raw))
            if libipld else None,
            "libipld.encode_cid": libipld.encode_cid if libipld else None,
            "Python (cid.py)": lambda raw: "b" + cid_module._b32encode_lower(raw),
        }),
        ("base58btc encode (keys, signatures)", binary, {
            "C (_speedups.b58encode)": lambda data: "z" + b58(data),
            "libipld.encode_multibase": (lambda data: libipld.encode_multibase("z", data))
            if libipld else None,
            "Python (cid.py)": lambda data: "z" + cid_module._b58encode(data),
        }),
        ("base58btc decode (keys, signatures)", texts, {
            # the C's decoder took 2.7 us a text, a third of libipld's speed: it went
            "libipld (cid.b58decode)": lambda text: cid_module.b58decode(text[1:]),
            "Python (cid.py)": lambda text: cid_module._b58decode(text[1:]),
        }),
        ("BLAKE2b-128 of one term", flat, {
            "C (_speedups.term_hash)": hash_c,
            "hashlib.blake2b": index._term_hash,
        }),
        ("term_claims, per 5,000 new terms", batches, {
            "C (_speedups.term_claims)": native.term_claims,
            "Python + hashlib (index.py)": index._term_claims,
        }),
    ]


def _time(fn: Callable[[Any], Any], inputs: Sequence[Any]) -> float:
    t0 = time.perf_counter()
    for x in inputs:
        fn(x)
    return time.perf_counter() - t0


def run(messages: int = MESSAGES, rounds: int = ROUNDS) -> dict[str, Any]:
    """{case: {"inputs": n, "candidates": {name: {"ops_per_s", "ratio"} or None}}}; the
    ratio is over the first candidate's ops/s"""
    if native is None:
        raise SystemExit("the C speedups are not built (or MIZU_PURE_PYTHON is set)")
    results: dict[str, Any] = {}
    for case, inputs, candidates in _cases(messages):
        reference = [next(iter(candidates.values()))(x) for x in inputs]  # type: ignore[misc]
        present = {name: fn for name, fn in candidates.items() if fn is not None}
        for name, fn in present.items():
            if [fn(x) for x in inputs] != reference:
                raise SystemExit(f"{case}: {name} gives other results than Mizu")
        best = dict.fromkeys(present, float("inf"))
        for _ in range(rounds):
            for name, fn in present.items():
                best[name] = min(best[name], _time(fn, inputs))
        mizu = len(inputs) / next(iter(best.values()))
        results[case] = {"inputs": len(inputs), "candidates": {
            name: None if name not in best else
            {"ops_per_s": len(inputs) / best[name], "ratio": len(inputs) / best[name] / mizu}
            for name in candidates}}
    return results


def table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for case, r in results.items():
        for i, (name, x) in enumerate(r["candidates"].items()):
            label = case if i == 0 else ""
            if x is None:
                rows.append([label, name, "not installed", ""])
            else:
                rows.append([label, name, f"{x['ops_per_s']:,.0f}", f"{x['ratio']:.2f}x"])
    return ["case", "candidate", "ops/s", "vs Mizu"], rows


def main() -> None:
    headers, rows = table(run())
    widths = [max(len(c) for c in col) for col in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip())


if __name__ == "__main__":
    main()
