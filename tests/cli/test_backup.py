"""`mizu backup`: snapshots of a website folder, their diff, and restoring a site."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.cli.conftest import Mizu
from tests.cli.test_put_view import assert_one_line_error


def make_site(root: Path) -> Path:
    site = root / "example.org"
    (site / "blog" / "2026").mkdir(parents=True)
    (site / "index.html").write_text("<h1>home</h1>")
    (site / "blog" / "2026" / "première note.html").write_text("<p>é</p>")
    (site / "blog" / "with space.html").write_text("<p>space</p>")
    (site / "empty.txt").write_bytes(b"")
    (site / "logo.png").write_bytes(os.urandom(600_000))
    return site


def test_backup_restore_rerun_and_diff(mizu: Mizu, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("backup")
    site = make_site(work)
    first = mizu("backup", str(site))
    assert first.code == 0
    s1 = first.stdout.split()[-1]
    assert "5 pages" in first.stdout
    snapshot = json.loads(mizu("view", s1).stdout)
    assert snapshot["type"] == "site-snapshot" and snapshot["site"] == "example.org" and "$prev" not in snapshot
    restored = work / "restored"
    assert mizu("get", s1, str(restored)).code == 0
    assert subprocess.run(["diff", "-r", str(site), str(restored)], check=False).returncode == 0
    # Unchanged site: no new file blocks, but a new snapshot that follows the first.
    second = mizu("backup", str(site))
    s2 = second.stdout.split()[-1]
    assert "5 pages (0 new or changed), 0 new file blocks" in second.stdout and s2 != s1
    assert json.loads(mizu("view", s2).stdout)["pages"] == snapshot["pages"]  # the same page messages
    assert json.loads(mizu("view", s2).stdout)["$prev"] == f"https://mizu.stream/v0/view-raw/{s1}"
    (site / "index.html").write_text("<h1>home, changed</h1>")
    (site / "empty.txt").unlink()
    (site / "new.css").write_text("body {}")
    third = mizu("backup", str(site))
    assert "5 pages (2 new or changed)" in third.stdout
    s3 = third.stdout.split()[-1]
    assert mizu("backup", "--diff", s1, s3).stdout.splitlines() == ["+ new.css", "- empty.txt", "M index.html"]
    assert json.loads(mizu("--json", "backup", "--diff", s1, s2).stdout) == {"added": [], "removed": [], "changed": []}
    pages = json.loads(mizu("query", '{"@select": ["?path", "?type"], "@where": {"type": "page", "path": "?path", "media_type": "?type", "site": "example.org"}}').stdout)
    assert {"?path": "index.html", "?type": "text/html"} in pages
    assert mizu("fsck").code == 0


def test_backup_bad_inputs(mizu: Mizu, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("backup")
    assert_one_line_error(mizu("backup", str(work / "absent")), 2, "is not a folder")
    assert_one_line_error(mizu("backup"), 2, "give the site's folder")
    message = mizu("put", input='{"a": 1}').stdout.strip()
    assert_one_line_error(mizu("backup", "--diff", message, message), 1, "is not a site snapshot")


def _interrupted(monkeypatch, pages_stored: int | None) -> None:  # type: ignore[no-untyped-def]
    """Make the next backup die between its pages and its snapshot (or, with
    `pages_stored`, after storing only that many pages), as a SIGKILL would."""
    from mizu_core import Repository

    real = Repository.publish

    def publish(self, messages, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(messages, list) and pages_stored is not None:
            real(self, messages[:pages_stored], *args, **kwargs)
            raise KeyboardInterrupt
        if isinstance(messages, dict) and messages.get("type") == "site-snapshot":
            raise KeyboardInterrupt
        return real(self, messages, *args, **kwargs)

    monkeypatch.setattr(Repository, "publish", publish)


def _messages(mizu: Mizu) -> list[str]:
    return mizu("log", "-q").stdout.split()


def test_a_backup_killed_before_its_snapshot_is_continued(mizu: Mizu, tmp_path_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("backup")
    site = make_site(work)
    first = mizu("backup", str(site)).stdout.split()[-1]
    (site / "index.html").write_text("<h1>home, changed</h1>")
    (site / "new.css").write_text("body {}")
    (site / "more.css").write_text("p {}")
    for stored, resumed in [(None, 3), (2, 2)]:  # killed after all its pages; after two of three
        before = _messages(mizu)
        _interrupted(monkeypatch, stored)
        assert mizu("backup", str(site)).code == 130
        monkeypatch.undo()
        published = [c for c in _messages(mizu) if c not in before]
        assert len(published) == (3 if stored is None else 2)  # pages, no snapshot
        rerun = mizu("backup", str(site))
        assert rerun.code == 0, rerun.stderr
        assert f"7 pages (3 new or changed, {resumed} of them published by an interrupted backup)" in rerun.stdout
        snapshot = rerun.stdout.split()[-1]
        new = [c for c in _messages(mizu) if c not in before]
        assert len(new) == 4 and snapshot in new  # the three pages once, and the snapshot
        linked = {page["/"] for page in json.loads(mizu("view", snapshot).stdout)["pages"]}
        assert set(published) <= linked
        assert json.loads(mizu("view", snapshot).stdout)["$prev"].endswith(first)
        assert mizu("backup", "--diff", first, snapshot).stdout.splitlines() == (
            ["+ more.css", "+ new.css", "M index.html"] if stored is None
            else ["M index.html", "M more.css", "M new.css"])
        (site / "new.css").write_text(f"body {{ margin: {stored} }}")  # the next round changes
        (site / "more.css").write_text(f"p {{ margin: {stored} }}")
        (site / "index.html").write_text(f"<h1>{stored}</h1>")
        first = snapshot
    assert mizu("fsck").code == 0


def test_messages_posing_as_the_sites_snapshot_are_not_followed(mizu: Mizu, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("backup")
    site = make_site(work)
    first = mizu("backup", str(site)).stdout.split()[-1]
    for fake in ({"root": "not a link"}, {"root": {"/": first}}, {"pages": 3},
                 {"nested": {"type": "site-snapshot", "site": "example.org"}}):
        body = {"type": "site-snapshot", "site": "example.org", **fake}
        if "nested" in fake:
            body = {"nested": fake["nested"]}
        assert mizu("put", input=json.dumps(body)).code == 0
        again = mizu("backup", str(site))
        assert again.code == 0 and "5 pages (0 new or changed)" in again.stdout, again.stderr
        following = again.stdout.split()[-1]
        assert json.loads(mizu("view", following).stdout)["$prev"].endswith(first)
        first = following


def test_pages_someone_else_published_under_the_runs_id_are_not_taken(tmp_path: Path) -> None:
    from mizu_core import Repository
    from mizu_core.files.backup import backup, run_id

    repo = Repository.memory()
    site = tmp_path / "s"
    site.mkdir()
    (site / "a.html").write_text("<p>a</p>")
    file = repo.add(site / "a.html")
    forged = {"type": "page", "site": "s", "snapshot": run_id(repo, "s", None), "path": "a.html",
              "media_type": "text/html", "size": 8, "file": file}
    forged_cid = repo.publish(forged, sign=False)  # the id is derived from public things
    snapshot = backup(repo, site, "s")
    assert (snapshot.new_pages, snapshot.resumed_pages) == (1, 0)
    assert repo.message(snapshot.cid)["pages"] != [forged_cid]
