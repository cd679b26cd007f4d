"""Start-up is a feature: `mizu --help`, `view`, `log` and `query` stay free of heavy imports
(cryptography included: reading never needs a key) and build only the command they run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import run_mizu

HEAVY = {"libp2p", "trio", "pyld", "rdflib", "pyoxigraph", "jsonschema", "multiformats",
         "cryptography", "sortedcontainers", "libipld", "starlette", "hypercorn", "mizu_gateway"}  # sortedcontainers: the memory store's
# The write paths' own modules, which a read never needs.
WRITE_PATH = {"mizu_core.publish", "mizu_core.repo.received", "mizu_core.message.dagpb",
              "mizu_core.repo.file_stats", "mizu_core.files"}

PROBE = """
import sys
from mizu_cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({m.split('.')[0] for m in sys.modules} & %r)
heavy += sorted(m for m in sys.modules if m in %r)
heavy += sorted(m for m in sys.modules if m.startswith("mizu_cli.commands."))
print("HEAVY:" + ",".join(heavy), file=sys.stderr)
"""


def loaded_heavy_modules(*args: str, cwd: Path) -> list[str]:
    result = subprocess.run([sys.executable, "-c", PROBE % (HEAVY, WRITE_PATH), *args], cwd=cwd,
                            capture_output=True, text=True, check=False, timeout=60)
    line = next(x for x in result.stderr.splitlines() if x.startswith("HEAVY:"))
    return [m for m in line[len("HEAVY:"):].split(",") if m]


def test_read_commands_import_nothing_heavy(repo_dir: Path) -> None:
    cid = "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"
    subprocess.run([str(Path(sys.executable).parent / "mizu"), "put", "--no-sign"], cwd=repo_dir,
                   input=b'{"text": "Hello, world!"}', check=True, capture_output=True)
    query = '{"@select": "?t", "@where": {"text": "?t"}}'
    # --help through click reads each command's docstring, so it imports every command
    # module (the `mizu` script prints it without click: test_help_and_manuals.py).
    assert [m for m in loaded_heavy_modules("--help", cwd=repo_dir) if "commands" not in m] == []
    assert loaded_heavy_modules("view", cid, cwd=repo_dir) == ["mizu_cli.commands.view"]
    assert loaded_heavy_modules("log", cwd=repo_dir) == ["mizu_cli.commands.log"]
    assert loaded_heavy_modules("query", query, cwd=repo_dir) == ["mizu_cli.commands.query"]


ENTRY = """
import sys
from mizu_cli.entry import main
try:
    main()
except SystemExit as e:
    print("EXIT", e.code, "click" in sys.modules, file=sys.stderr)
"""


def test_a_plain_view_runs_without_click_and_as_the_command_does(repo_dir: Path) -> None:
    """`mizu view TARGET` alone skips typer and click (entry.py); what it prints, and how it
    fails, must be what the command prints through click."""
    parent = run_mizu("put", "--no-sign", input='{"n": 1, "sub": {"x": [1, 2]}}', cwd=repo_dir).stdout.strip()
    child = run_mizu("put", "--no-sign", input=f'{{"$prev": "https://mizu.stream/v0/view-raw/{parent}", "n": 2}}',
                     cwd=repo_dir).stdout.strip()
    elsewhere = repo_dir / "sub" / "dir"
    elsewhere.mkdir(parents=True)
    cases = [
        (("view", parent), repo_dir), (("view-raw", f"{parent}/sub/x"), elsewhere),
        (("view", f"https://mizu.stream/v0/update/{child}"), repo_dir),
        (("view", "bafyreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), repo_dir),  # not here
        (("view", "nonsense"), repo_dir), (("view", parent), repo_dir.parent),  # no repository
    ]
    env = {k: v for k, v in os.environ.items() if k != "MIZU_DIR"}
    for args, cwd in cases:
        fast = subprocess.run([sys.executable, "-c", ENTRY, *args], cwd=cwd, env=env,
                              capture_output=True, text=True, check=False, timeout=60)
        *said, status = fast.stderr.splitlines()
        slow = run_mizu(*args, cwd=cwd)
        assert status == f"EXIT {slow.code} False", (args, fast.stderr)
        assert (fast.stdout, "\n".join(said)) == (slow.stdout, slow.stderr.rstrip("\n")), args
    assert "x" in json.loads(run_mizu("view", parent, cwd=repo_dir).stdout)["sub"]  # the cases print
