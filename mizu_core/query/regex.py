"""REGEX (SPARQL) and `@regex` (json-rql) on Google RE2: matching takes time linear in
the text whatever the pattern, so no pattern can stall a query (`(a+)+$` on a long run of
`a`s is exponential for a backtracking engine).

XPath's flags (the ones SPARQL takes) map onto RE2: `i`, `m` and `s` as inline flags,
`x` by removing whitespace outside character classes (what XPath says it means), `q` by
quoting the pattern. What RE2 cannot do by design (backreferences, lookahead and
lookbehind) is refused with a QueryError, as is any other invalid pattern or flag.
Unlike Python's `re`, RE2's `\\d`, `\\w` and `\\s` are ASCII (use `\\p{Nd}`, `\\pL`…).

The low-level binding is used on the UTF-8 bytes of terms: the `re2` module's
Python-level `search` decodes offsets back to characters, ten times the cost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from mizu_core.errors import QueryError

_FLAGS = frozenset("imsxq")
_WHITESPACE = frozenset("\t\n\r ")
_MAX_MEMORY = 64 << 20  # RE2's budget for one compiled pattern (its default is 8 MiB)


class RegexError(QueryError):
    """A pattern or flags RE2 cannot take."""


def _quoted(text: str, limit: int = 60) -> str:
    shown = json.dumps(text, ensure_ascii=True)
    return shown if len(shown) <= limit else shown[: limit - 4] + '…"'


def _strip_whitespace(pattern: str) -> str:
    """XPath's `x` flag: whitespace is removed except inside a character class."""
    out, in_class, escaped = [], False, False
    for c in pattern:
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c in _WHITESPACE:
            continue
        out.append(c)
    return "".join(out)


@lru_cache(maxsize=512)
def matcher(pattern: str, flags: str = "") -> Callable[[bytes], bool]:
    """A test of UTF-8 text: does `pattern` (with XPath `flags`) match somewhere in it?
    Compiled patterns are cached. RegexError when RE2 cannot take them."""
    import re2  # type: ignore[import-untyped]
    from re2 import _re2

    unknown = set(flags) - _FLAGS
    if unknown:
        raise RegexError(f"regex flag {_quoted(''.join(sorted(unknown)))} is not one of i, m, s, x, q")
    if "q" in flags:
        source = _re2.RE2.QuoteMeta(pattern.encode("utf-8", "surrogatepass")).decode("utf-8", "surrogatepass")
        inline = "i" if "i" in flags else ""
    else:
        source = _strip_whitespace(pattern) if "x" in flags else pattern
        inline = "".join(f for f in "ims" if f in flags)
    if inline:
        source = f"(?{inline}){source}"
    try:
        encoded = source.encode("utf-8")
    except UnicodeEncodeError:
        raise RegexError(f"regex {_quoted(pattern)} is not valid Unicode") from None
    options = re2.Options()
    options.log_errors = False  # RE2 would write its own message to stderr
    options.never_capture = True
    options.max_mem = _MAX_MEMORY
    compiled: Any = _re2.RE2(encoded, options)
    if not compiled.ok():
        reason = compiled.error().decode("utf-8", "replace").split(":", 1)[0]
        if "escape" in reason and any(f"\\{d}" in pattern for d in "123456789"):
            reason = "backreferences are not supported"
        elif "perl operator" in reason:
            reason = "lookahead and lookbehind are not supported"
        raise RegexError(f"invalid regex {_quoted(pattern)}: {reason}",
                         hint="queries match regexes with RE2, in time linear in the text")
    match, anchor = compiled.Match, _re2.RE2.Anchor.UNANCHORED

    def search(text: bytes) -> bool:
        return bool(match(anchor, text, 0, len(text))[0][0] >= 0)

    return search
