"""Query rows as text, in chunks as they come, for whoever writes them: the command line to
a terminal or pipe, the gateway to an HTTP response. The first chunk is ready as soon as
the first row is, so a long answer starts at once and is never held whole.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Iterator
from typing import Any

FORMATS = ("json", "ndjson", "csv", "tsv", "nquads")
MEDIA_TYPES = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "nquads": "application/n-quads",
}


def dumps(value: Any, pretty: bool = True) -> str:
    if pretty:
        return json.dumps(value, indent=2, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def chunks(rows: Iterable[Any], fmt: str) -> Generator[str, None, None]:
    """`rows` (JSON objects, or lines of text for nquads) in `fmt`, one chunk a row."""
    if fmt == "json":
        first = True
        for row in rows:
            yield ("[\n  " if first else ",\n  ") + dumps(row, pretty=False)
            first = False
        yield "[]\n" if first else "\n]\n"
    elif fmt == "ndjson":
        for row in rows:
            yield dumps(row, pretty=False) + "\n"
    elif fmt == "nquads":
        yield from rows
    elif fmt in ("csv", "tsv"):
        yield from _delimited(rows, "," if fmt == "csv" else "\t")
    else:
        raise ValueError(f"unknown format {fmt!r}")


def cell(value: Any) -> str:
    """A row's value as one field of text: an IRI or a literal's lexical form."""
    if isinstance(value, dict):
        return str(value.get("@id", value.get("@value", "")))
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _delimited(rows: Iterable[dict[str, Any]], delimiter: str) -> Iterator[str]:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    header: list[str] | None = None
    for row in rows:
        if header is None:
            header = list(row)
            writer.writerow(h.lstrip("?") for h in header)
        writer.writerow(cell(row.get(h)) for h in header)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
