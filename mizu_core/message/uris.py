"""Mizu URIs: the IRIs that name messages, and the spellings accepted for them.

Canonical form: `https://mizu.stream/v0/view-raw/<cid>[/path]` (base32 CIDv1) and
`https://mizu.stream/v0/update/<cid>`; files are `ipfs://<cid>[/path]`. Legacy spellings
(`message/`, `view_raw/`, without `v0/`, any multibase) normalise to the canonical one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from mizu_core.message.cid import CID, DAG_CBOR

MIZU = "https://mizu.stream/"
VIEW_RAW = MIZU + "v0/view-raw/"
UPDATE = MIZU + "v0/update/"
IPFS = "ipfs://"

_MIZU_URI = re.compile(
    r"^https?://mizu\.stream/(?:v0/)?(message|view-raw|view_raw|update)/([A-Za-z0-9]+)(/.*)?$"
)
_IPFS_URI = re.compile(r"^ipfs://([A-Za-z0-9]+)(/.*)?$")

# Characters an IRI path segment may hold as is (RFC 3987 iunreserved + sub-delims + ":@"),
# minus "/" so that a key never reads as two segments.
_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"


@dataclass(frozen=True)
class StaticRef:
    """A parsed absolute reference: `action` is "view-raw", "update" or "ipfs"."""

    action: str
    cid: CID
    path: str  # "" or "/a/b"

    def iri(self) -> str:
        if self.action == "ipfs" or self.cid.codec != DAG_CBOR:
            return IPFS + str(self.cid.to_v1()) + self.path
        base = UPDATE if self.action == "update" else VIEW_RAW
        return base + str(self.cid.to_v1()) + self.path


def parse_static(uri: str) -> StaticRef | None:
    """Parse an absolute Mizu or ipfs:// URI; None when it is not one."""
    m = _MIZU_URI.match(uri)
    if m:
        action = "update" if m.group(1) == "update" else "view-raw"
        cid_text, path = m.group(2), m.group(3)
    else:
        m = _IPFS_URI.match(uri)
        if not m:
            return None
        action, cid_text, path = "ipfs", m.group(1), m.group(2)
    try:
        cid = CID.parse(cid_text)  # bounded: long text is refused before it is decoded
    except ValueError:
        return None
    return StaticRef(action, cid, (path or "").rstrip("/"))


def is_partial(uri: str) -> bool:
    return uri == "#" or uri.startswith("#/")


def message_iri(cid: CID | str) -> str:
    return VIEW_RAW + str(cid)


# The caches below keep only short values: a cache of 4,096 hostile 4 MiB strings (a peer's
# query frames, say) would hold 16 GiB.
CACHED_LENGTH = 512


def segment(key: str) -> str:
    """A field name as one IRI path segment."""
    return _cached_segment(key) if len(key) <= CACHED_LENGTH else _segment(key)


def _segment(key: str) -> str:
    return quote(key, safe=_SEGMENT_SAFE)


_cached_segment = lru_cache(maxsize=4096)(_segment)  # field names repeat in every message


def normalise_iri(iri: str) -> str:
    """Canonical spelling of a Mizu or ipfs URI; any other IRI is returned unchanged."""
    return _cached_normalise(iri) if len(iri) <= CACHED_LENGTH else _normalise(iri)


def _normalise(iri: str) -> str:
    ref = parse_static(iri)
    return ref.iri() if ref else iri


_cached_normalise = lru_cache(maxsize=4096)(_normalise)  # queries name the same few IRIs
