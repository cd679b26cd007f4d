"""Writers for what commands print: JSON (pretty on a terminal or for views), NDJSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any


def dumps(value: Any, pretty: bool = True) -> str:
    if pretty:
        return json.dumps(value, indent=2, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def print_json(value: Any, pretty: bool = True) -> None:
    sys.stdout.write(dumps(value, pretty) + "\n")


def print_ndjson(rows: Iterable[Any]) -> None:
    write = sys.stdout.write
    for row in rows:
        write(dumps(row, pretty=False) + "\n")


def write_rows(rows: Iterable[Any], fmt: str) -> None:
    """Write query rows as they come: the first row is out before the last is computed.
    Rows are JSON objects, or lines of text for nquads."""
    write = sys.stdout.write
    if fmt == "json":
        first = True
        for row in rows:
            write(("[\n  " if first else ",\n  ") + dumps(row, pretty=False))
            first = False
        write("[]\n" if first else "\n]\n")
    elif fmt == "ndjson":
        print_ndjson(rows)
    elif fmt == "nquads":
        for line in rows:
            write(line)
    elif fmt in ("csv", "tsv"):
        _write_delimited(rows, "," if fmt == "csv" else "\t")
    else:
        _write_table(list(rows))


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("@id", value.get("@value", "")))
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _write_delimited(rows: Iterable[dict[str, Any]], delimiter: str) -> None:
    import csv

    writer = None
    for row in rows:
        if writer is None:
            header = list(row)
            writer = csv.writer(sys.stdout, delimiter=delimiter, lineterminator="\n")
            writer.writerow(h.lstrip("?") for h in header)
        writer.writerow(_cell(row.get(h)) for h in header)


def _write_table(rows: list[dict[str, Any]]) -> None:
    header = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(h)) for h in header] for row in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(header)]
    line = "  ".join
    print(line(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line("-" * w for w in widths))
    for c in cells:
        print(line(v.ljust(w) for v, w in zip(c, widths, strict=True)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def info(message: str, quiet: bool) -> None:
    """Porcelain chatter: stdout, silenced by --quiet."""
    if not quiet:
        print(message)


def warn(message: str) -> None:
    print(message, file=sys.stderr)


def human_size(n: float) -> str:
    """Bytes as people read them: 812 B, 3.1 MB (powers of 1000, as du --si)."""
    if n < 1000:
        return f"{int(n)} B"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if n < 1000 or unit == "GB":
            break
    return f"{n:.1f} {unit}"
