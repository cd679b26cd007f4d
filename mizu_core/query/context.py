"""JSON-LD contexts as json-rql uses them: `@vocab`, `@base`, prefixes, `@type: @id`.

A small, offline implementation of the parts of JSON-LD context processing queries need
(pyld costs 0.3 s of start-up and would fetch remote contexts). Remote contexts are refused.
Vocabulary-relative keys are percent-encoded like message fields, so a query key matches
the field it names whatever characters it holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mizu_core.errors import QueryError
from mizu_core.message.uris import MIZU, normalise_iri, segment

_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# An absolute IRI as N-Triples can write it: a scheme (_ABSOLUTE), no space, control or
# character RFC 3987 excludes, and well-formed percent escapes. Two linear scans: a single
# pattern with a repeated alternation is slow on a long hostile IRI, and holds the GIL.
_NOT_IRI = re.compile(r'[\x00-\x20<>"{}|^`\\\x7f]|%(?![0-9A-Fa-f]{2})')


def valid_iri(iri: str) -> str:
    """`iri` if it is an absolute IRI a result can hold, else a QueryError."""
    if _ABSOLUTE.match(iri) is None or _NOT_IRI.search(iri) is not None:
        shown = iri if len(iri) <= 80 else iri[:77] + "…"
        raise QueryError(f"{shown!r} is not a valid absolute IRI (no spaces, <>\"{{}}|^`\\, bare %)")
    return iri
_GEN_DELIMS = set(":/?#[]@")


def _flag(flags: set[str], term: str, on: bool) -> None:
    if on:
        flags.add(term)
    else:
        flags.discard(term)


@dataclass(frozen=True)
class Context:
    vocab: str | None = MIZU
    base: str | None = None
    terms: dict[str, str] = field(default_factory=dict)  # term or prefix → IRI
    iri_valued: frozenset[str] = frozenset()  # terms whose values are IRIs (@type: @id)
    prefixes: frozenset[str] = frozenset()  # terms usable as `prefix:` (JSON-LD 1.1's rule)

    def extend(self, local: Any, where: str) -> Context:
        """This context with a local `@context` applied (an object, or an array of them)."""
        if local is None:
            return self
        if isinstance(local, list):
            ctx = self
            for i, item in enumerate(local):
                ctx = ctx.extend(item, f"{where}[{i}]")
            return ctx
        if isinstance(local, str):
            raise QueryError(f"{where}: remote context '{local}' is not allowed (inline it)")
        if not isinstance(local, dict):
            raise QueryError(f"{where}: a context must be an object")
        vocab, base = self.vocab, self.base
        terms, iri_valued, prefixes = dict(self.terms), set(self.iri_valued), set(self.prefixes)
        for key, value in local.items():
            if key == "@vocab":
                vocab = None if value is None else self._absolute(value, terms, prefixes, where)
            elif key == "@base":
                if value is not None and not isinstance(value, str):
                    raise QueryError(f"{where}.@base: must be an IRI (a string) or null")
                base = value
            elif key in ("@language", "@version"):
                continue
            elif key.startswith("@"):
                raise QueryError(f"{where}: unsupported context keyword '{key}'")
            elif isinstance(value, str):
                terms[key] = self._absolute(value, terms, prefixes, where, vocab)
                iri_valued.discard(key)
                # A plain term ending in a gen-delim character may serve as a prefix.
                _flag(prefixes, key, ":" not in key and "/" not in key and terms[key][-1:] in _GEN_DELIMS)
            elif isinstance(value, dict):
                iri = value.get("@id", key)
                terms[key] = self._absolute(iri, terms, prefixes, where, vocab)
                _flag(iri_valued, key, value.get("@type") == "@id")
                _flag(prefixes, key, value.get("@prefix") is True)
            elif value is None:
                terms.pop(key, None)
                prefixes.discard(key)
            else:
                raise QueryError(f"{where}.{key}: a term definition must be a string or an object")
        return Context(vocab, base, terms, frozenset(iri_valued), frozenset(prefixes))

    @staticmethod
    def _absolute(
        value: Any, terms: dict[str, str], prefixes: set[str], where: str, vocab: str | None = None
    ) -> str:
        if not isinstance(value, str):
            raise QueryError(f"{where}: '{value}' is not an IRI")
        if value.startswith("@"):
            raise QueryError(f"{where}: '{value}' is not an IRI")
        prefix, sep, rest = value.partition(":")
        if sep and prefix in prefixes and not rest.startswith("//"):
            return terms[prefix] + rest
        if _ABSOLUTE.match(value):
            return value
        if vocab:
            return vocab + value
        raise QueryError(f"{where}: '{value}' is not an absolute IRI")

    def expand_key(self, key: str) -> str:
        """A property key (or @type value) → IRI: term, prefix:name, absolute, or @vocab;
        a QueryError if that is not a valid IRI."""
        return valid_iri(self._expand_key(key))

    def _expand_key(self, key: str) -> str:
        """A property key (or @type value) → IRI: term, prefix:name, absolute, or @vocab."""
        if key.startswith("$$"):
            key = key[1:]  # `$$x` names field `$x`
        if key in self.terms:
            return self.terms[key]
        prefix, sep, rest = key.partition(":")
        if sep and prefix in self.prefixes and not rest.startswith("//"):
            return self.terms[prefix] + rest
        if _ABSOLUTE.match(key):
            return key
        if self.vocab is None:
            raise QueryError(f"'{key}' is not an IRI and no @vocab is set")
        return self.vocab + segment(key)

    def expand_id(self, value: str) -> str:
        """An @id value → IRI (see `_expand_id`); a QueryError if not a valid IRI."""
        return valid_iri(self._expand_id(value))

    def _expand_id(self, value: str) -> str:
        """An @id value → IRI: prefix:name, absolute (Mizu URIs normalised), or @base."""
        prefix, sep, rest = value.partition(":")
        if sep and prefix in self.prefixes and not rest.startswith("//"):
            return self.terms[prefix] + rest
        if _ABSOLUTE.match(value):
            return normalise_iri(value)
        if self.base is not None:
            from urllib.parse import urljoin

            try:
                return urljoin(self.base, value)
            except ValueError as e:  # an IPv6 host without its ']', …
                raise QueryError(f"'{value}' cannot be resolved against @base '{self.base}': {e}") from None
        if value in self.terms:
            return self.terms[value]
        raise QueryError(f"'{value}' is not an absolute IRI (set @base in the @context)")
