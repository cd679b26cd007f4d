"""The HTTP gateway end to end: the installed `mizu serve --offline --http 0` answering
over a real socket on 127.0.0.1, each endpoint against what the command line prints for
the same repository (man/mizu-gateway.7)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import MIZU, mizu, wait_for
from tests.e2e.test_sync import init, put_lines

pytestmark = pytest.mark.slow

STREAM = {"name": "news", "queries": {
    "latest": {"@select": "?t", "@where": {"stream": {"$ref": "#"}, "title": "?t"}},
    "by": {"@select": "?t", "@where": {"author": {"$var": "who"}, "title": "?t"}}}}
TITLES = {"@select": "?t", "@where": {"feed": "news", "title": "?t"}}


class Gateway:
    """A `mizu serve --offline --http 0` process and the URL it printed."""

    def __init__(self, repo: Path) -> None:
        self.process = subprocess.Popen([MIZU, "serve", "--offline", "--http", "0"], cwd=repo,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.log: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().decode().strip()  # printed when listening
        assert self.url.startswith("http://127.0.0.1:") and self.url.endswith("/"), (self.url, self.log)

    def _collect(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.decode())

    def request(self, path: str, body: bytes | None = None, **headers: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path.lstrip("/"), data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=10) == 0, self.log


def cli(repo: Path, *args: str) -> str:
    return mizu(*args, cwd=repo).stdout.decode()


def refused(answer: tuple[int, dict[str, str], bytes], status: int, words: str) -> None:
    code, headers, body = answer
    assert code == status, answer
    assert headers["content-type"] == "application/json" and words in json.loads(body)["error"], answer


def test_every_endpoint_answers_what_the_command_line_prints(tmp_path: Path) -> None:
    repo = init(tmp_path, "a")
    (stream,) = put_lines(repo, [json.dumps(STREAM)])
    ref = {"$ref": f"https://mizu.stream/v0/view-raw/{stream}"}
    posts = put_lines(repo, [json.dumps({"feed": "news", "title": f"t{i}", "author": a, "stream": ref})
                             for i, a in enumerate(["ann", "bob", "ann"])])
    (newer,) = put_lines(repo, [json.dumps({"title": "t0 again", "$prev": [{"$ref": f"https://mizu.stream/v0/view-raw/{posts[0]}"}]})])
    (secret,) = put_lines(repo, [json.dumps({"feed": "news", "title": "secret", "secret": True})])
    (spam,) = put_lines(repo, [json.dumps({"feed": "news", "title": "spam", "spam": True})])
    mizu("config", "set", "filters.private", '{"secret": true}', cwd=repo)
    mizu("config", "set", "filters.block", '{"spam": true}', cwd=repo)
    gateway = Gateway(repo)
    try:
        record = json.loads((repo / ".mizu" / "serve.json").read_text())
        assert record["http"] == [gateway.url] and record["addresses"] == []

        def get(path: str, **headers: str) -> bytes:
            code, _, body = gateway.request(path, **headers)
            assert code == 200, (path, body)
            return body

        assert get(f"v0/view-raw/{posts[0]}").decode() == cli(repo, "view", posts[0])
        assert get(f"v0/view-raw/{posts[0]}/author").decode() == cli(repo, "view", f"{posts[0]}/author")
        assert get(f"v0/update/{newer}").decode() == cli(repo, "view", "--update", newer)
        for path, params, args in [("queries/latest", "", []), ("queries/by", "?who=ann", ["-p", "who=ann"])]:
            rows = json.loads(get(f"v0/query/{stream}/{path}{params}"))
            assert rows == json.loads(cli(repo, "query", "--cid", f"{stream}/{path}", *args))
        csv = get(f"v0/query/{stream}/queries/by?who=ann&format=csv").decode()
        assert csv == cli(repo, "query", "--format", "csv", "--cid", f"{stream}/queries/by", "-p", "who=ann")
        code, headers, body = gateway.request("v0/query", json.dumps(TITLES).encode(),
                                              **{"Content-Type": "application/json", "Accept": "application/x-ndjson"})
        assert code == 200 and headers["content-type"] == "application/x-ndjson"
        everything = cli(repo, "query", "--format", "ndjson", json.dumps(TITLES))
        assert sorted(body.decode().splitlines()) == sorted(
            line for line in everything.splitlines() if '"secret"' not in line)  # private: not on the web
        assert "spam" not in everything and "secret" in everything  # blocked is hidden everywhere

        refused(gateway.request(f"v0/view-raw/{secret}"), 404, "not in the repository")
        assert get(f"v0/view-raw/{spam}")  # blocked records are served, only hidden from results
        refused(gateway.request(f"v0/query/{stream}/queries/by"), 400, "missing parameter 'who'")
        refused(gateway.request(f"v0/view-raw/{posts[0]}", Host="attacker.example"), 403, "does not serve Host")

        message = json.dumps({"feed": "news", "title": "from the web"}).encode()
        refused(gateway.request("v0/publish", message, **{"Content-Type": "application/json"}), 401, "Bearer")
        token = (repo / ".mizu" / "gateway-token").read_text().strip()
        code, _, body = gateway.request("v0/publish", message, **{
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        assert code == 201, body
        (cid,) = json.loads(body)["cids"]
        assert json.loads(cli(repo, "view", cid))["title"] == "from the web"  # stored as put stores
    finally:
        gateway.stop()
    assert not (repo / ".mizu" / "serve.json").exists()
    assert gateway.log == ["stopping on SIGTERM\n"]


def test_offline_needs_http_and_a_taken_port_is_one_line(tmp_path: Path) -> None:
    repo = init(tmp_path, "a")
    out = mizu("serve", "--offline", cwd=repo, check=False)
    assert out.returncode == 2 and out.stderr.decode().startswith("error: --offline runs the HTTP gateway alone")
    bad = mizu("serve", "--offline", "--http", "nonsense", cwd=repo, check=False)
    assert bad.returncode == 2 and bad.stderr.decode() == "error: --http takes [HOST:]PORT, not 'nonsense'\n"
    everywhere = subprocess.Popen([MIZU, "serve", "--offline", "--http", "0.0.0.0:0"], cwd=repo,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert everywhere.stdout is not None and everywhere.stderr is not None
        url = everywhere.stdout.readline().decode().strip()
        warning = everywhere.stderr.readline().decode()
        assert url.startswith("http://0.0.0.0:")
        assert warning == (f"warning: the gateway at {url} is open beyond this machine: anyone who reaches "
                           "it reads every record not private\n")
    finally:
        everywhere.send_signal(signal.SIGTERM)
        everywhere.wait(timeout=10)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = mizu("serve", "--offline", "--http", str(port), cwd=repo, check=False)
    assert busy.returncode == 1
    assert busy.stderr.decode() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert not (repo / ".mizu" / "serve.json").exists()


def test_sparql_clients_written_by_others_query_the_node(tmp_path: Path) -> None:
    from rdflib import Graph, Literal, URIRef
    from rdflib.plugins.stores.sparqlstore import SPARQLStore
    from SPARQLWrapper import CSV, JSON, XML, SPARQLWrapper

    repo = init(tmp_path, "a")
    put_lines(repo, [json.dumps({"feed": "news", "title": f"t{i}", "n": i}) for i in range(5)])
    put_lines(repo, [json.dumps({"feed": "news", "title": "secret", "n": 99, "secret": True})])
    mizu("config", "set", "filters.private", '{"secret": true}', cwd=repo)
    select = ("SELECT ?t ?n WHERE { ?p <https://mizu.stream/title> ?t ; <https://mizu.stream/n> ?n "
              "FILTER(?n >= 0) } ORDER BY ?n")
    local = json.loads(cli(repo, "query", "--sparql", "--format", "json", select))
    public = [row for row in local if row["?t"] != "secret"]
    gateway = Gateway(repo)
    try:
        endpoint = gateway.url + "v0/sparql"
        for method in ("GET", "POST"):
            client = SPARQLWrapper(endpoint)
            client.setMethod(method)
            client.setQuery(select)
            client.setReturnFormat(JSON)
            bindings = client.query().convert()["results"]["bindings"]  # type: ignore[index, call-overload]
            assert [(b["t"]["value"], int(b["n"]["value"])) for b in bindings] == [(r["?t"], r["?n"]) for r in public]
            assert bindings[0]["n"]["datatype"] == "http://www.w3.org/2001/XMLSchema#integer"
        client.setReturnFormat(XML)
        assert len(client.query().convert().getElementsByTagName("result")) == 5  # type: ignore[union-attr]
        client.setReturnFormat(CSV)
        assert client.query().convert().decode().splitlines()[:2] == ["t,n", "t0,0"]  # type: ignore[union-attr]
        client.setQuery("ASK { ?p <https://mizu.stream/n> 99 }")  # private: not there on the web
        client.setReturnFormat(JSON)
        assert client.query().convert()["boolean"] is False  # type: ignore[index, call-overload]

        store = SPARQLStore(endpoint)  # rdflib's own client: XML results, RDF/XML graphs
        graph = Graph(store=store)
        rows = list(graph.query(select))
        assert [(str(t), n.toPython()) for t, n in rows] == [(r["?t"], r["?n"]) for r in public]  # type: ignore[misc]
        built = graph.query("CONSTRUCT { ?p <http://example.org/title> ?t } WHERE { ?p <https://mizu.stream/title> ?t }")
        titles = {str(o) for _, _, o in built}  # type: ignore[misc]
        assert titles == {f"t{i}" for i in range(5)}
        assert all(p == URIRef("http://example.org/title") and o != Literal("secret") for _, p, o in built)  # type: ignore[misc]
    finally:
        gateway.stop()


class Events:
    """A server-sent event stream read as it comes (a socket timeout bounds each wait)."""

    def __init__(self, url: str, timeout: float = 10) -> None:
        request = urllib.request.Request(url, headers={"Accept": "text/event-stream"})
        self.response = urllib.request.urlopen(request, timeout=timeout)

    def next(self) -> tuple[str, Any]:
        """The next event's name and data (comment lines, the heartbeats, skipped)."""
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline().decode()
            assert line, "the stream ended"
            if line == "\n" and fields:
                return fields["event"], json.loads(fields["data"])
            if line.startswith(":") or line == "\n":
                continue
            name, _, value = line.rstrip("\n").partition(": ")
            fields[name] = value

    def close(self) -> None:
        self.response.close()


def test_a_live_answer_follows_the_store(tmp_path: Path) -> None:
    repo = init(tmp_path, "a")
    (stream,) = put_lines(repo, [json.dumps(STREAM)])
    ref = {"$ref": f"https://mizu.stream/v0/view-raw/{stream}"}
    put_lines(repo, [json.dumps({"title": "first", "stream": ref})])
    mizu("config", "set", "gateway.max-watchers", "1", cwd=repo)
    gateway = Gateway(repo)
    try:
        events = Events(f"{gateway.url}v0/query/{stream}/queries/latest")
        assert events.response.headers["content-type"].startswith("text/event-stream")
        assert events.next() == ("rows", [{"?t": "first"}])
        refused(gateway.request(f"v0/query/{stream}/queries/latest", Accept="text/event-stream"), 503,
                "gateway.max-watchers")
        put_lines(repo, [json.dumps({"unrelated": 1})])  # arrives, answer unchanged: no event
        put_lines(repo, [json.dumps({"title": "second", "stream": ref})])
        kind, rows = events.next()
        assert kind == "rows" and sorted(r["?t"] for r in rows) == ["first", "second"]
        events.close()
        opened: list[Events] = []

        def reopened() -> bool:  # the closed watcher's slot is given back
            try:
                opened.append(Events(f"{gateway.url}v0/query/{stream}/queries/latest"))
            except urllib.error.HTTPError as e:
                assert e.code == 503
                return False
            return True

        wait_for(reopened, 10, "the closed watcher's slot")
        assert opened[0].next()[0] == "rows"
        opened[0].close()
    finally:
        gateway.stop()


def test_a_live_answer_hears_a_record_pulled_from_another_node(tmp_path: Path) -> None:
    from tests.e2e.test_sync import QUERY, Serving

    a, b = init(tmp_path, "a"), init(tmp_path, "b")
    put_lines(a, [json.dumps({"feed": "news", "title": f"post {i}"}) for i in range(3)])
    node_a = Serving(a)
    sub = mizu("subscribe", QUERY, cwd=b).stdout.decode().strip()
    mizu("remote", "add", "a", node_a.address, cwd=b)
    node_b = subprocess.Popen([MIZU, "serve", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--http", "0"],
                              cwd=b, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(line.decode() for line in node_b.stderr or []), daemon=True).start()
    try:
        assert node_b.stdout is not None
        address, url = node_b.stdout.readline().decode().strip(), node_b.stdout.readline().decode().strip()
        assert "/p2p/12D3KooW" in address and url.startswith("http://127.0.0.1:"), (address, url, log)
        record = json.loads((b / ".mizu" / "serve.json").read_text())
        assert record["addresses"] == [address] and record["http"] == [url]
        wait_for(lambda: any("pulled 3 records" in line for line in log), 15, "b to pull a's feed on connecting")
        events = Events(f"{url}v0/query/{sub}", timeout=2)  # each wait below: at most 2 s
        kind, rows = events.next()
        assert kind == "rows" and len(rows) == 3
        wait_for(lambda: any(f"announcing {sub}" in line for line in node_a.log), 10, "a to announce the feed")
        put_lines(a, [json.dumps({"feed": "news", "title": "post 3"})])  # a announces, b pulls
        kind, rows = events.next()  # within 2 s of the announcement, or a socket time-out
        assert kind == "rows" and {"post 3"} <= {r["?title"] for r in rows}
        events.close()
    finally:
        node_b.send_signal(signal.SIGTERM)
        assert node_b.wait(timeout=10) == 0, log
        node_a.stop()
    assert not (b / ".mizu" / "serve.json").exists()
