"""`/v0/sparql`: the SPARQL 1.1 Protocol (query only), so SPARQL clients written by others
(SPARQLWrapper, rdflib's SPARQLStore) can query a node. The query comes as `?query=` (GET),
as the body (`application/sparql-query`) or as a form field (`query=`); results as the
W3C formats (sparql_results.py), graphs as N-Triples (or Turtle, which N-Triples is, or
RDF/XML). Mizu holds one graph: `default-graph-uri` and `named-graph-uri` are ignored."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.requests import Request
from starlette.responses import Response

from mizu_core.query import sparql_results
from mizu_core.query.engine import sparql_form
from mizu_gateway.answers import first_accepted
from mizu_gateway.errors import HTTPError
from mizu_gateway.rows import text_response

RESULTS = {"application/sparql-results+json": "json", "application/json": "json",
           "application/sparql-results+xml": "xml", "application/xml": "xml", "text/xml": "xml",
           "text/csv": "csv", "text/tab-separated-values": "tsv"}
GRAPHS = {"application/n-triples": "nt", "text/plain": "nt", "text/turtle": "ttl",
          "application/x-turtle": "ttl", "application/rdf+xml": "xml"}
GRAPH_TYPES = {"nt": "application/n-triples", "ttl": "text/turtle; charset=utf-8",
               "xml": "application/rdf+xml"}


async def answer(api: Any, request: Request) -> Response:
    text = await _query_text(api, request)
    form, variables = await anyio.to_thread.run_sync(sparql_form, text)
    rows = api.repo.query(text, sparql=True, nquads=form == "graph", timeout=api.settings.query_timeout,
                          public=True)
    if form == "graph":
        kind = _choose(request, GRAPHS, "nt")
        texts = rows if kind != "xml" else _rdf_xml(rows)
        return await text_response(texts, GRAPH_TYPES[kind], api.slots)
    fmt = _choose(request, RESULTS, "json")
    return await text_response(sparql_results.chunks(rows, variables, fmt), sparql_results.MEDIA_TYPES[fmt],
                               api.slots)


async def _query_text(api: Any, request: Request) -> str:
    if "update" in request.query_params:
        raise HTTPError(400, "this endpoint answers queries only, no updates")
    if request.method == "GET":
        values = request.query_params.getlist("query")
    else:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await api.body(request)
        if media == "application/sparql-query":
            values = [_text(body)]
        elif media == "application/x-www-form-urlencoded":
            fields = parse_qs(_text(body), keep_blank_values=True)
            if "update" in fields:
                raise HTTPError(400, "this endpoint answers queries only, no updates")
            values = fields.get("query", [])
        else:
            raise HTTPError(415, "a SPARQL query is POSTed as application/sparql-query or a form")
    if len(values) != 1:
        raise HTTPError(400, "give exactly one query" if values else "no query: give query=")
    return values[0]


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(400, "the query is not UTF-8") from None


def _choose(request: Request, offered: dict[str, str], default: str) -> str:
    """The format asked for: SPARQLWrapper's `format=`/`output=`, else the first type of
    `Accept` offered, else `default`."""
    for name in ("format", "output"):
        short = request.query_params.get(name)
        if short is not None and short in offered.values():
            return short
    return first_accepted(request, offered) or default


def _rdf_xml(lines: Any) -> Generator[str, None, None]:
    """N-Triples lines as one RDF/XML document (rdflib writes it: it parses SPARQL here)."""
    from rdflib import Graph

    graph = Graph()
    graph.parse(data="".join(lines), format="nt")
    yield graph.serialize(format="xml")
