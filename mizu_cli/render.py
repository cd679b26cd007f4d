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


def info(message: str, quiet: bool) -> None:
    """Porcelain chatter: stdout, silenced by --quiet."""
    if not quiet:
        print(message)


def warn(message: str) -> None:
    print(message, file=sys.stderr)
