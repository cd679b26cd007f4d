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
