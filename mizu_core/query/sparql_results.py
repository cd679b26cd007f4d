"""Query rows in the W3C SPARQL 1.1 result formats (JSON, XML, CSV, TSV), in chunks as they
come, for the gateway's SPARQL protocol endpoint and any client that reads them.

Rows are the engine's JSON rows (mizu-query(1)): native strings, numbers and booleans
are literals of their XSD type, `{"@id": …}` an IRI (`_:…` a blank node), `{"@value": …,
"@type"|"@language": …}` a typed or language-tagged literal. ASK is one row `{"@ask": b}`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Generator, Iterable
from typing import Any
from xml.sax.saxutils import escape, quoteattr

XSD = "http://www.w3.org/2001/XMLSchema#"
MEDIA_TYPES = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
}
Term = dict[str, str]


def term(value: Any) -> Term:
    """A row's value as a SPARQL JSON results term."""
    if type(value) is bool:
        return {"type": "literal", "value": "true" if value else "false", "datatype": XSD + "boolean"}
    if type(value) is int:
        return {"type": "literal", "value": str(value), "datatype": XSD + "integer"}
    if type(value) is float:
        text = "NaN" if math.isnan(value) else ("INF" if value > 0 else "-INF") if math.isinf(value) else repr(value)
        return {"type": "literal", "value": text, "datatype": XSD + "double"}
    if type(value) is dict and "@id" in value:
        iri = str(value["@id"])
        return {"type": "bnode", "value": iri[2:]} if iri.startswith("_:") else {"type": "uri", "value": iri}
    if type(value) is dict and "@value" in value:
        literal = {"type": "literal", "value": str(value["@value"])}
        if "@language" in value:
            literal["xml:lang"] = str(value["@language"])
        elif "@type" in value and value["@type"] != XSD + "string":
            literal["datatype"] = str(value["@type"])
        return literal
    return {"type": "literal", "value": value if type(value) is str else json.dumps(value)}


def chunks(rows: Iterable[Any], variables: list[str] | None, fmt: str) -> Generator[str, None, None]:
    """`rows` of a SELECT (`variables`: its projection, without `?`) or an ASK
    (`variables` None) in `fmt` (json, xml, csv, tsv)."""
    if fmt == "json":
        yield from _json(rows, variables)
    elif fmt == "xml":
        yield from _xml(rows, variables)
    elif fmt in ("csv", "tsv"):
        yield from _delimited(rows, variables, fmt)
    else:
        raise ValueError(f"unknown SPARQL results format {fmt!r}")


def _ask(rows: Iterable[Any]) -> bool:
    first: dict[str, Any] = next(iter(rows), {})
    return bool(first.get("@ask"))


def _json(rows: Iterable[Any], variables: list[str] | None) -> Generator[str, None, None]:
    if variables is None:
        yield json.dumps({"head": {}, "boolean": _ask(rows)}) + "\n"
        return
    yield '{"head": {"vars": ' + json.dumps(variables) + '}, "results": {"bindings": ['
    first = True
    for row in rows:
        binding = {name: term(row[f"?{name}"]) for name in variables if f"?{name}" in row}
        yield ("\n  " if first else ",\n  ") + json.dumps(binding, ensure_ascii=False)
        first = False
    yield "\n]}}\n"


def _xml(rows: Iterable[Any], variables: list[str] | None) -> Generator[str, None, None]:
    yield '<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">\n<head>'
    if variables is None:
        yield f"</head>\n<boolean>{'true' if _ask(rows) else 'false'}</boolean>\n</sparql>\n"
        return
    yield "".join(f"<variable name={quoteattr(v)}/>" for v in variables) + "</head>\n<results>\n"
    for row in rows:
        cells = []
        for name in variables:
            if f"?{name}" not in row:
                continue
            t = term(row[f"?{name}"])
            if t["type"] == "uri":
                inner = f"<uri>{escape(t['value'])}</uri>"
            elif t["type"] == "bnode":
                inner = f"<bnode>{escape(t['value'])}</bnode>"
            else:
                attributes = (f" datatype={quoteattr(t['datatype'])}" if "datatype" in t else "") + \
                    (f" xml:lang={quoteattr(t['xml:lang'])}" if "xml:lang" in t else "")
                inner = f"<literal{attributes}>{escape(_xml_text(t['value']))}</literal>"
            cells.append(f"<binding name={quoteattr(name)}>{inner}</binding>")
        yield "<result>" + "".join(cells) + "</result>\n"
    yield "</results>\n</sparql>\n"


def _xml_text(text: str) -> str:
    """Characters XML 1.0 cannot hold at all, as the replacement character."""
    return "".join(c if c in "\t\n\r" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd")
                   or c >= "\U00010000" else "\ufffd" for c in text)


def _delimited(rows: Iterable[Any], variables: list[str] | None, fmt: str) -> Generator[str, None, None]:
    """SPARQL CSV (lexical forms) or TSV (terms as in N-Triples), header first."""
    import csv
    import io

    if variables is None:  # ASK has no CSV/TSV form in the standard; one column, as Jena does
        variables = ["_askResult"]
        rows = [{"?_askResult": _ask(rows)}]
    if fmt == "tsv":
        yield "\t".join(f"?{v}" for v in variables) + "\n"
        for row in rows:
            yield "\t".join(_tsv_term(term(row[f"?{v}"])) if f"?{v}" in row else "" for v in variables) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(variables)
    for row in rows:
        writer.writerow(_csv_value(term(row[f"?{v}"])) if f"?{v}" in row else "" for v in variables)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _csv_value(t: Term) -> str:
    return "_:" + t["value"] if t["type"] == "bnode" else t["value"]


def _tsv_term(t: Term) -> str:
    if t["type"] == "uri":
        return f"<{t['value']}>"
    if t["type"] == "bnode":
        return "_:" + t["value"]
    text = '"' + t["value"].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") \
        .replace("\r", "\\r").replace("\t", "\\t") + '"'
    if "xml:lang" in t:
        return text + "@" + t["xml:lang"]
    if t.get("datatype") in (XSD + "integer", XSD + "boolean") and t["value"].lstrip("-").isalnum():
        return t["value"]  # the abbreviated forms TSV allows
    return text + (f"^^<{t['datatype']}>" if "datatype" in t else "")
