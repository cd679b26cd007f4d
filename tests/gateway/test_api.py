"""The gateway's API in process (Starlette's test client, no sockets): each endpoint
against what the core (and so the command) gives for the same repository, and every
refusal a JSON error with its status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mizu_core import Repository
from mizu_core.message import codec
from mizu_core.query.formats import dumps
from mizu_gateway.app import make_app
from mizu_gateway.settings import load

STREAM = {"name": "news", "queries": {
    "latest": {"@select": "?t", "@where": {"stream": {"$ref": "#"}, "title": "?t"}},
    "by": {"@select": "?t", "@where": {"author": {"$var": "who"}, "title": "?t"}}}}
TITLES = {"@select": "?t", "@where": {"feed": "news", "title": "?t"}}


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    with Repository.init(tmp_path) as repo:
        yield repo


def client(repo: Repository, **headers: str) -> TestClient:
    return TestClient(make_app(repo, load(repo, [])), base_url="http://127.0.0.1:8080",
                      headers=headers, raise_server_exceptions=False)


def error(response: Any, status: int, words: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    assert response.text.endswith("\n") and response.text.count("\n") == 1
    assert words in json.loads(response.text)["error"], response.text


def test_views_are_what_mizu_view_prints(repo: Repository) -> None:
    first = repo.publish({"feed": "news", "title": "v1", "tags": ["a", "b"]})
    second = repo.publish({"title": "v2", "$prev": [{"$ref": f"https://mizu.stream/v0/view-raw/{first}"}]})
    web = client(repo)
    got = web.get(f"/v0/view-raw/{first}")
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    assert got.text == dumps(codec.to_json(repo.resolve(first))) + "\n"
    assert web.get(f"/v0/view-raw/{first}/tags/1").json() == "b"
    update = web.get(f"/v0/update/{second}")
    assert update.json() == codec.to_json(repo.update_view(second).value)
    assert update.json()["feed"] == "news"  # from the ancestor
    assert web.get(f"/v0/update/{second}/feed").json() == "news"
    error(web.get(f"/v0/view-raw/{first}/nope"), 404, "no 'nope' under")
    error(web.get(f"/v0/update/{second}/nope"), 404, "no 'nope' in the update view")
    error(web.get("/v0/view-raw/nonsense"), 400, "is not a CID")
    error(web.get("/v0/view-raw/bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"), 404, "not in the repository")
    error(web.get("/v1/anything"), 404, "no such endpoint")
    error(web.post(f"/v0/view-raw/{first}"), 405, "method not allowed")


def test_queries_stored_and_ad_hoc_in_every_format(repo: Repository) -> None:
    stream = repo.publish(STREAM, sign=False)
    for i, who in enumerate(["ann", "bob", "ann"]):
        repo.publish({"feed": "news", "title": f"t{i}", "author": who,
                      "stream": {"$ref": f"https://mizu.stream/v0/view-raw/{stream}"}})
    web = client(repo)
    latest = web.get(f"/v0/query/{stream}/queries/latest")
    assert latest.status_code == 200 and latest.headers["content-type"] == "application/json"
    assert sorted(r["?t"] for r in latest.json()) == ["t0", "t1", "t2"]
    assert latest.json() == list(repo.query(cid=stream, path="queries/latest"))
    by = web.get(f"/v0/query/{stream}/queries/by", params={"who": "ann"})
    assert by.json() == list(repo.query(cid=stream, path="queries/by", params={"who": "ann"}))
    assert sorted(r["?t"] for r in by.json()) == ["t0", "t2"]
    error(web.get(f"/v0/query/{stream}/queries/by"), 400, "missing parameter 'who'")
    error(web.get(f"/v0/query/{stream}/queries/by?who=a&who=b"), 400, "parameter 'who' given twice")

    adhoc = web.post("/v0/query", json=TITLES)
    assert adhoc.json() == list(repo.query(TITLES))
    ndjson = web.post("/v0/query?format=ndjson", json=TITLES)
    assert ndjson.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line) for line in ndjson.text.splitlines()] == adhoc.json()
    csv = web.post("/v0/query", json=TITLES, headers={"Accept": "text/csv"})
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv.text.splitlines()[0] == "t" and sorted(csv.text.splitlines()[1:]) == ["t0", "t1", "t2"]
    tsv = web.post("/v0/query", json=TITLES, headers={"Accept": "text/html, text/tab-separated-values"})
    assert tsv.headers["content-type"].startswith("text/tab-separated-values")
    construct = {"@construct": {"@id": "?p", "title": "?t"}, "@where": {"@id": "?p", "feed": "news", "title": "?t"}}
    quads = web.post("/v0/query?format=nquads", json=construct)
    assert quads.headers["content-type"] == "application/n-quads"
    assert sorted(quads.text.splitlines()) == sorted("".join(repo.query(construct, nquads=True)).splitlines())
    error(web.post("/v0/query?format=xml", json=TITLES), 400, "unknown format 'xml'")
    error(web.post("/v0/query", content=b"{not json"), 400, "invalid JSON")
    error(web.post("/v0/query", json={"@select": "?t", "@where": {"@bogus": 1}}), 400, "@where.@bogus: unknown keyword")


def test_a_long_answer_streams_and_a_query_past_its_time_is_503(repo: Repository, tmp_path: Path) -> None:
    repo.publish([{"feed": "news", "title": f"post {i}", "n": i} for i in range(3000)])
    web = client(repo)
    rows = web.post("/v0/query?format=ndjson", json=TITLES).text.splitlines()
    assert len(rows) == 3000  # more than one batch of text
    repo.config.repo_file.set("gateway.query-timeout", 0.001)
    slow = {"@select": ["?a", "?b"], "@where": [{"@id": "?x", "n": "?a"}, {"@id": "?y", "n": "?b"}]}
    error(client(repo).post("/v0/query", json=slow), 503, "query timed out after 0.001 s")


def test_queries_at_once_are_bounded(repo: Repository) -> None:
    repo.publish([{"feed": "news", "title": f"post {i}"} for i in range(10)])
    repo.config.repo_file.set("gateway.max-queries", 1)
    web = client(repo)
    with web.stream("POST", "/v0/query?format=ndjson", json=TITLES) as first:  # holds the only slot ...
        assert first.status_code == 200
        busy = web.post("/v0/query", json=TITLES)
        error(busy, 503, "busy answering 1 queries")
        assert busy.headers["retry-after"] == "1"
        first.read()
    assert web.post("/v0/query", json=TITLES).status_code == 200  # ... and gave it back


def test_publish_needs_the_token_and_stores_as_put_does(repo: Repository) -> None:
    web = client(repo)
    token = (repo.path / "gateway-token").read_text().strip()  # made when the gateway starts
    assert oct((repo.path / "gateway-token").stat().st_mode & 0o777) == "0o600"
    message = {"feed": "news", "title": "from the web"}
    refused = web.post("/v0/publish", json=message)
    error(refused, 401, "writes need Authorization: Bearer")
    assert refused.headers["www-authenticate"] == "Bearer"
    error(web.post("/v0/publish", json=message, headers={"Authorization": "Bearer wrong"}), 401, "")
    assert list(repo.query(TITLES)) == []
    auth = {"Authorization": f"Bearer {token}"}
    stored = web.post("/v0/publish", json=message, headers=auth)
    assert stored.status_code == 201
    (cid,) = stored.json()["cids"]
    assert repo.resolve(cid)["title"] == "from the web" and "$signatures" in repo.resolve(cid)
    lines = "\n".join(json.dumps({"feed": "news", "title": f"line {i}"}) for i in range(3))
    several = web.post("/v0/publish?sign=false", content=lines, headers={**auth, "Content-Type": "application/x-ndjson"})
    assert several.status_code == 201 and len(several.json()["cids"]) == 3
    assert "$signatures" not in repo.resolve(several.json()["cids"][0])
    error(web.post("/v0/publish", content=b'{"$bad": 1}', headers={**auth, "Content-Type": "application/json"}),
          400, "")
    error(web.post("/v0/publish", content="a=b", headers={**auth, "Content-Type": "application/x-www-form-urlencoded"}),
          415, "application/json")
    repo.config.repo_file.set("gateway.max-body", 100)
    error(client(repo).post("/v0/publish", content=b"x" * 101, headers={**auth, "Content-Type": "application/json"}),
          413, "gateway.max-body")
    assert len(list(repo.query(TITLES))) == 4  # the refused stored nothing


def test_private_records_are_never_served_and_blocked_ones_hidden(repo: Repository) -> None:
    public = repo.publish({"feed": "news", "title": "public"})
    secret = repo.publish({"feed": "news", "title": "secret", "secret": True})
    blocked = repo.publish({"feed": "news", "title": "spam", "spam": True})
    holder = repo.publish({"feed": "other", "see": {"$ref": f"https://mizu.stream/v0/view-raw/{secret}"}})
    repo.config.repo_file.set("filters.private", '{"secret": true}')
    repo.config.repo_file.set("filters.block", '{"spam": true}')
    web = client(repo)
    error(web.get(f"/v0/view-raw/{secret}"), 404, "not in the repository")
    error(web.get(f"/v0/update/{secret}"), 404, "not in the repository")
    assert web.get(f"/v0/view-raw/{public}").status_code == 200
    assert web.get(f"/v0/view-raw/{blocked}").status_code == 200  # blocked: kept, served, not in results
    assert web.get(f"/v0/view-raw/{holder}").status_code == 200
    assert sorted(r["?t"] for r in web.post("/v0/query", json=TITLES).json()) == ["public"]
    assert sorted(r["?t"] for r in repo.query(TITLES)) == ["public", "secret"]  # locally, the owner sees it


def test_hosts_paths_and_cors(repo: Repository) -> None:
    cid = repo.publish({"feed": "news", "title": "hello"})
    assert client(repo, host="localhost:8080").get(f"/v0/view-raw/{cid}").status_code == 200
    assert client(repo, host="abc.stream.localhost:8080").get(f"/v0/view-raw/{cid}").status_code == 200
    assert client(repo, host="[::1]:8080").get(f"/v0/view-raw/{cid}").status_code == 200
    error(client(repo, host="evil.example:8080").get(f"/v0/view-raw/{cid}"), 403, 'does not serve Host "evil.example:8080"')
    error(client(repo, host="127.0.0.1.evil.example").get(f"/v0/view-raw/{cid}"), 403, "")
    repo.config.repo_file.set("gateway.hosts", "mizu.example")
    assert client(repo, host="mizu.example").get(f"/v0/view-raw/{cid}").status_code == 200
    web = client(repo)
    for path in ("/v0/view-raw/%2e%2e/x", f"/v0/view-raw/{cid}/a%2Fb", f"/v0/view-raw/{cid}/%00"):
        error(web.get(path), 400, "a path with")
    error(web.get(f"/v0/view-raw/{cid}/" + "a" * 1100), 414, "segment over 1024 bytes")
    read = web.get(f"/v0/view-raw/{cid}")
    assert read.headers["access-control-allow-origin"] == "*" and read.headers["x-content-type-options"] == "nosniff"
    write = web.post("/v0/publish", json={})
    assert "access-control-allow-origin" not in write.headers
    assert web.options(f"/v0/view-raw/{cid}").status_code == 204
    error(web.options("/v0/publish"), 403, "no cross-origin writes")


def test_the_sparql_protocol(repo: Repository) -> None:
    repo.publish([{"feed": "news", "title": f"t{i}", "n": i} for i in range(3)])
    repo.publish({"feed": "news", "title": 'quote " tab\tline\nend', "n": 10})
    web = client(repo)
    select = ("SELECT ?t ?n WHERE { ?p <https://mizu.stream/title> ?t ; <https://mizu.stream/n> ?n } ORDER BY ?n")
    got = web.get("/v0/sparql", params={"query": select})
    assert got.headers["content-type"] == "application/sparql-results+json"
    answer = got.json()
    assert answer["head"] == {"vars": ["t", "n"]}
    assert answer["results"]["bindings"][0] == {
        "t": {"type": "literal", "value": "t0"},
        "n": {"type": "literal", "value": "0", "datatype": "http://www.w3.org/2001/XMLSchema#integer"}}
    posted = web.post("/v0/sparql", content=select, headers={"Content-Type": "application/sparql-query"})
    form = web.post("/v0/sparql", data={"query": select})
    assert posted.json() == form.json() == answer
    tsv = web.get("/v0/sparql", params={"query": select}, headers={"Accept": "text/tab-separated-values"})
    assert tsv.text.splitlines()[0] == "?t\t?n" and '"quote \\" tab\\tline\\nend"\t10' in tsv.text
    csv = web.get("/v0/sparql", params={"query": select, "format": "csv"})
    assert csv.text.startswith("t,n\r\nt0,0\r\n") and '"quote "" tab\tline\nend",10' in csv.text
    xml = web.get("/v0/sparql", params={"query": select}, headers={"Accept": "application/sparql-results+xml"})
    assert '<variable name="t"/>' in xml.text and "<literal>t1</literal>" in xml.text
    empty = web.get("/v0/sparql", params={"query": "SELECT ?x WHERE { ?x <http://none> ?y }"}).json()
    assert empty == {"head": {"vars": ["x"]}, "results": {"bindings": []}}
    ask = web.get("/v0/sparql", params={"query": "ASK { ?p <https://mizu.stream/n> 2 }"})
    assert ask.json() == {"head": {}, "boolean": True}
    graph = web.get("/v0/sparql", params={"query": "CONSTRUCT { ?p <http://x/n> ?n } WHERE { ?p <https://mizu.stream/n> ?n }"})
    assert graph.headers["content-type"] == "application/n-triples" and len(graph.text.splitlines()) == 4
    error(web.get("/v0/sparql"), 400, "no query: give query=")
    error(web.get("/v0/sparql", params=[("query", select), ("query", select)]), 400, "exactly one query")
    error(web.get("/v0/sparql", params={"update": "DROP ALL"}), 400, "queries only, no updates")
    error(web.post("/v0/sparql", data={"update": "DROP ALL"}), 400, "queries only, no updates")
    error(web.post("/v0/sparql", content=select, headers={"Content-Type": "text/plain"}), 415, "application/sparql-query")
    error(web.get("/v0/sparql", params={"query": "SELEC nonsense"}), 400, "SPARQL syntax error")
