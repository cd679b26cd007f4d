"""mizu query: run a json-rql query over the local store."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from mizu_cli.render import write_rows
from mizu_cli.state import state

if TYPE_CHECKING:
    from mizu_core.api import Repository


def query(
    ctx: typer.Context,
    text: str = typer.Argument(None, metavar="[QUERY|-]", help="json-rql query; - or nothing reads stdin."),
    cid: str = typer.Option(None, "--cid", metavar="CID[/PATH]", help="Run the query stored in a message (at PATH inside it)."),
    param: list[str] = typer.Option(None, "--param", "-p", metavar="NAME=VALUE", help="Fill {\"$var\": NAME} in the query (repeatable)."),
    fmt: str = typer.Option(None, "--format", "-f", help="json, ndjson, csv, tsv, table (default on a terminal; json otherwise) or nquads (@construct, @describe)."),
    sparql: bool = typer.Option(False, "--sparql", help="The query is SPARQL 1.1 (SELECT, CONSTRUCT, DESCRIBE, ASK)."),
    network: bool = typer.Option(False, "--network", help="First ask every remote for the records the query needs; store what verifies."),
) -> None:
    """Run a json-rql query and print its rows as they are found.

    Rows are objects like {"?content": "roses are red"}: strings, numbers and booleans
    stay native, IRIs are {"@id": …}, other literals {"@value": …, "@type": …}.
    """
    from mizu_core.errors import UsageError
    from mizu_core.message.cid import parse_cid

    st = state(ctx)
    if sparql and (cid is not None or param):
        raise UsageError("--sparql takes the query text; --cid and --param are for json-rql")
    fmt = fmt or ("json" if st.json or not sys.stdout.isatty() else "table")
    if fmt not in ("json", "ndjson", "csv", "tsv", "table", "nquads"):
        raise UsageError(f"unknown format '{fmt}' (json, ndjson, csv, tsv, table, nquads)")
    nquads = fmt == "nquads"
    params = {}
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--param '{item}' is not NAME=VALUE")
        params[name] = value
    repo = st.repository()
    if cid is not None:
        if text is not None:
            raise UsageError("give a query or --cid, not both")
        cid_text, _, path = cid.partition("/")
        rows = repo.query(params=params, cid=parse_cid(cid_text), path=path, nquads=nquads)
    else:
        source = sys.stdin.read() if text in (None, "-") else text
        if network:
            _ask_network(repo, source, params, sparql)
        rows = repo.query(source, params, sparql=sparql, nquads=nquads)
    write_rows(rows, fmt)


def _ask_network(repo: Repository, source: str, params: dict[str, str], sparql: bool) -> None:
    from mizu_cli.render import warn
    from mizu_core.errors import UsageError
    from mizu_core.message import codec
    from mizu_core.query import engine
    from mizu_core.sync.exchange import network_query
    from mizu_core.sync.remotes import resolve_peers

    if sparql:
        raise UsageError("--network takes a json-rql query")
    query = engine.prepare(codec.parse_json(source), params)  # what peers get: vars filled
    for peer, error in network_query(repo, query, resolve_peers(repo, [])).errors:
        warn(f"{peer}: {error}")

