"""Start-up is a feature: `mizu --help`, `view`, `log` and `query` stay free of heavy imports
(cryptography included: reading never needs a key) and build only the command they run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = {"libp2p", "trio", "pyld", "rdflib", "pyoxigraph", "jsonschema", "multiformats",
         "cryptography", "sortedcontainers"}  # the last: only the memory store needs it

PROBE = """
import sys
from mizu_cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({m.split('.')[0] for m in sys.modules} & %r)
heavy += sorted(m for m in sys.modules if m.startswith("mizu_cli.commands."))
print("HEAVY:" + ",".join(heavy), file=sys.stderr)
"""


def loaded_heavy_modules(*args: str, cwd: Path) -> list[str]:
    result = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,), *args], cwd=cwd,
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
