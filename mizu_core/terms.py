"""RDF terms as compact byte strings: the one representation the index and queries share.

A term is one kind byte followed by its payload, so terms are hashable, comparable and
stored without conversion: `I` IRI, `B` blank node, `S` xsd:string, `L` language-tagged
string (`lang\\0text`), `i` xsd:integer (decimal), `d` xsd:double (8 bytes IEEE big-endian),
`b` xsd:boolean (`1`/`0`), `x` xsd:base64Binary (raw bytes), `T` other typed literal
(`datatype\\0lexical`).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_STRING = XSD + "string"
XSD_INTEGER = XSD + "integer"
XSD_DOUBLE = XSD + "double"
XSD_BOOLEAN = XSD + "boolean"
XSD_BASE64 = XSD + "base64Binary"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"

Term = bytes

_double = struct.Struct(">d")
TRUE = b"b1"
FALSE = b"b0"


def iri(value: str) -> Term:
    return b"I" + value.encode("utf-8")


def blank(label: str) -> Term:
    return b"B" + label.encode("utf-8")


def literal(value: Any) -> Term:
    """The literal term of a scalar message value (SPEC §2)."""
    t = type(value)
    if t is str:
        return b"S" + str.encode(value, "utf-8")
    if t is bool:
        return TRUE if value else FALSE
    if t is int:
        return b"i" + str(value).encode("ascii")
    if t is float:
        return b"d" + _double.pack(value)
    if t is bytes:
        return b"x" + bytes(value)
    raise TypeError(f"no literal for {t.__name__}")


def typed(lexical: str, datatype: str) -> Term:
    return b"T" + datatype.encode("utf-8") + b"\0" + lexical.encode("utf-8")


def lang_string(text: str, lang: str) -> Term:
    return b"L" + lang.lower().encode("utf-8") + b"\0" + text.encode("utf-8")


def is_iri(term: Term) -> bool:
    return term[:1] == b"I"


def iri_value(term: Term) -> str:
    return term[1:].decode("utf-8")


def python_value(term: Term) -> Any:
    """The JSON-friendly value of a literal (str, int, float, bool, bytes) or the IRI text."""
    kind, body = term[:1], term[1:]
    if kind in (b"I", b"S", b"B"):
        return body.decode("utf-8")
    if kind == b"i":
        return int(body)
    if kind == b"d":
        return _double.unpack(body)[0]
    if kind == b"b":
        return body == b"1"
    if kind == b"x":
        return bytes(body)
    if kind in (b"L", b"T"):
        return body.split(b"\0", 1)[1].decode("utf-8")
    raise ValueError(f"unknown term kind {kind!r}")


def datatype(term: Term) -> str | None:
    kind = term[:1]
    if kind == b"S":
        return XSD_STRING
    if kind == b"i":
        return XSD_INTEGER
    if kind == b"d":
        return XSD_DOUBLE
    if kind == b"b":
        return XSD_BOOLEAN
    if kind == b"x":
        return XSD_BASE64
    if kind == b"L":
        return RDF_LANG_STRING
    if kind == b"T":
        return term[1:].split(b"\0", 1)[0].decode("utf-8")
    return None


def lexical(term: Term) -> str:
    kind = term[:1]
    if kind == b"d":
        return _double_lexical(_double.unpack(term[1:])[0])
    if kind == b"b":
        return "true" if term == TRUE else "false"
    if kind == b"x":
        return base64.b64encode(term[1:]).decode("ascii")
    return str(python_value(term))


def _double_lexical(value: float) -> str:
    text = repr(value)  # the shortest spelling that round-trips
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa if '.' in mantissa else mantissa + '.0'}E{int(exponent)}"
    return text


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )


def to_nt(term: Term) -> str:
    """N-Triples spelling of a term."""
    kind = term[:1]
    if kind == b"I":
        return f"<{iri_value(term)}>"
    if kind == b"B":
        return f"_:{term[1:].decode('utf-8')}"
    if kind == b"S":
        return f'"{_escape(python_value(term))}"'
    if kind == b"L":
        lang, text = term[1:].split(b"\0", 1)
        return f'"{_escape(text.decode("utf-8"))}"@{lang.decode("utf-8")}'
    return f'"{_escape(lexical(term))}"^^<{datatype(term)}>'
