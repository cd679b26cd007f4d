"""Deterministic BSBM-like data for the query benchmark, as Mizu messages.

Five kinds of message, each with a `type` field: producers and vendors (label, country,
homepage), products (label, comment, productType, a `producer` pointer, a set of
`features`, integer `numeric1..3` and, for 60 % of them, `numeric4`, `textual1`, and a nested
`dimensions` object), offers (`product` and `vendor` pointers, float `price`,
`deliveryDays`, validity dates) and reviews (`reviewFor` pointer, `reviewer`, `title`,
`text`, and for 90 % of them an integer `rating`). Pointers are `{"$ref": IRI}` to the
target's unsigned CID (as `mizu put --no-sign` gives it), so producers and vendors come first
in the file, then products, then offers and reviews. About 7.7 % of the products have no
review (the NOT EXISTS query finds them).

`generate(target_triples, seed, folder)` writes `messages.ndjson` (what `mizu put --lines
--no-sign` loads), `data.nt` (the same triples, from Mizu's own mapping, for the reference
stores) and `head.nt` (the first `HEAD_TRIPLES` of them, rdflib's fallback slice); it
returns the facts the queries need (IRIs, counts).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.message.triples import message_triples
from mizu_core.message.uris import VIEW_RAW
from mizu_core.terms import to_nt

VERSION = 1  # bump when the generated data changes (it is part of the cache key)
SEED = 20240601
HEAD_TRIPLES = 100_000
TRIPLES_PER_PRODUCT = 146  # measured average, offers and reviews included

_WORDS = ["river", "stone", "cloud", "signal", "garden", "lantern", "harbor", "meadow", "copper", "ember", "falcon", "glacier", "island", "juniper", "kettle", "ledger", "marble", "nectar", "orchard", "pepper", "quartz", "raven", "saddle", "timber", "umber", "velvet", "willow", "yonder", "zephyr", "anchor", "beacon", "cobalt", "delta", "echo", "fable", "grove", "hollow", "ivory", "jasper", "kindle", "lilac", "mosaic", "nimbus", "onyx", "prism", "quill", "ripple", "sable", "tundra"]
_COUNTRIES = ["AT", "CN", "DE", "ES", "FR", "GB", "JP", "KR", "RU", "US"]
PRODUCT_TYPES = 30


def _words(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choices(_WORDS, k=rng.randint(lo, hi)))


def _date(rng: random.Random) -> str:
    return f"2008-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def sizes(target_triples: int) -> dict[str, int]:
    products = max(50, round(target_triples / TRIPLES_PER_PRODUCT))
    return {"products": products, "producers": max(5, products // 50),
            "vendors": max(5, products // 100), "features": max(50, products // 14),
            "reviewers": max(10, products * 6 // 20)}


def messages(target_triples: int, seed: int = SEED) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All messages in publishing order, and the facts about them the queries use."""
    rng = random.Random(seed)
    n = sizes(target_triples)
    out: list[dict[str, Any]] = []
    iris: dict[str, list[str]] = {"producer": [], "vendor": [], "product": []}

    def add(kind: str | None, message: dict[str, Any]) -> None:
        out.append(message)
        if kind:
            iris[kind].append(VIEW_RAW + str(CID.for_block(codec.encode(message))))

    for i in range(n["producers"]):
        add("producer", {"type": "Producer", "label": f"Producer {i}", "producerId": i,
                         "country": rng.choice(_COUNTRIES),
                         "homepage": f"http://www.producer{i}.example/"})
    for i in range(n["vendors"]):
        add("vendor", {"type": "Vendor", "label": f"Vendor {i}", "vendorId": i,
                       "country": rng.choice(_COUNTRIES),
                       "homepage": f"http://www.vendor{i}.example/"})
    features = [f"ProductFeature{i}" for i in range(n["features"])]
    for i in range(n["products"]):
        product: dict[str, Any] = {
            "type": "Product", "productId": i,
            "label": _words(rng, 3, 3) + f" {i}",
            "comment": _words(rng, 10, 25),
            "productType": f"ProductType{rng.randrange(PRODUCT_TYPES)}",
            "producer": {"$ref": rng.choice(iris["producer"])},
            "features": rng.sample(features, rng.randint(3, 7)),
            "numeric1": rng.randint(1, 2000), "numeric2": rng.randint(1, 2000),
            "numeric3": rng.randint(1, 2000),
            "textual1": _words(rng, 4, 8),
            "dimensions": {"weight": round(rng.uniform(0.1, 40), 3),
                           "width": rng.randint(1, 200), "height": rng.randint(1, 200)},
        }
        if rng.random() < 0.6:
            product["numeric4"] = rng.randint(1, 2000)
        add("product", product)
    offer_id = review_id = 0
    reviewed = 0
    for product_iri in iris["product"]:
        for _ in range(rng.randint(5, 15)):
            add(None, {"type": "Offer", "offerId": offer_id, "product": {"$ref": product_iri},
                       "vendor": {"$ref": rng.choice(iris["vendor"])},
                       "price": round(rng.uniform(5, 10_000), 2),
                       "deliveryDays": rng.randint(1, 21),
                       "validFrom": _date(rng), "validTo": _date(rng)})
            offer_id += 1
        k = rng.randint(0, 12)
        reviewed += k > 0
        for _ in range(k):
            review: dict[str, Any] = {
                "type": "Review", "reviewId": review_id, "reviewFor": {"$ref": product_iri},
                "reviewer": f"Reviewer{rng.randrange(n['reviewers'])}",
                "title": _words(rng, 2, 6), "text": _words(rng, 20, 50),
                "publishDate": _date(rng)}
            if rng.random() < 0.9:
                review["rating"] = rng.randint(1, 10)
            add(None, review)
            review_id += 1
    facts = {**n, "offers": offer_id, "reviews": review_id, "reviewed_products": reviewed,
             "messages": len(out), "product_iris": iris["product"][:: max(1, n["products"] // 20)],
             "producer_iris": iris["producer"][:5], "vendor_iris": iris["vendor"][:5]}
    return out, facts


def generate(target_triples: int, seed: int, folder: Path) -> dict[str, Any]:
    """Write messages.ndjson, data.nt and head.nt into `folder`; return the facts."""
    msgs, facts = messages(target_triples, seed)
    count, cids = 0, []
    with open(folder / "messages.ndjson", "w", encoding="utf-8") as nd, \
            open(folder / "data.nt", "w", encoding="utf-8") as nt, \
            open(folder / "head.nt", "w", encoding="utf-8") as head:
        for m in msgs:
            nd.write(json.dumps(m, separators=(",", ":")) + "\n")
            cid = CID.for_block(codec.encode(m))
            cids.append(str(cid))
            for s, p, o in message_triples(cid, m):
                line = f"{to_nt(s)} {to_nt(p)} {to_nt(o)} .\n"
                nt.write(line)
                if count < HEAD_TRIPLES:
                    head.write(line)
                count += 1
    facts.update(triples=count, head_triples=min(count, HEAD_TRIPLES), seed=seed,
                 target_triples=target_triples, version=VERSION)
    (folder / "cids.json").write_text(json.dumps(cids))
    return facts
