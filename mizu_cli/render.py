"""Writers for what commands print: JSON (pretty on a terminal or for views), NDJSON."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from mizu_core.query.formats import cell, chunks, dumps


def print_json(value: Any, pretty: bool = True) -> None:
    sys.stdout.write(dumps(value, pretty) + "\n")


def print_ndjson(rows: Iterable[Any]) -> None:
    sys.stdout.writelines(chunks(rows, "ndjson"))


def write_rows(rows: Iterable[Any], fmt: str) -> None:
    """Write query rows as they come: the first row is out before the last is computed.
    Rows are JSON objects, or lines of text for nquads."""
    if fmt == "table":
        _write_table(list(rows))
    else:
        sys.stdout.writelines(chunks(rows, fmt))


def _write_table(rows: list[dict[str, Any]]) -> None:
    header = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[cell(row.get(h)) for h in header] for row in rows]
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
