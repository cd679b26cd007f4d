"""mizu put (alias publish): publish messages from a file or stdin."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mizu_cli.render import print_json, warn
from mizu_cli.state import state

if TYPE_CHECKING:
    from mizu_core.message.keys import PrivateKey


def _signer(pem: str | None) -> PrivateKey | None:
    """The key named by --pem PATH[,PASSWORD] (password also from MIZU_KEY_PASSWORD)."""
    from mizu_core.errors import BadKey
    from mizu_core.message.keys import PrivateKey

    if pem is None:
        return None
    path, password = pem, None
    if not os.path.exists(pem) and "," in pem:
        path, password = pem.split(",", 1)
    password = password or os.environ.get("MIZU_KEY_PASSWORD") or None
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BadKey(f"cannot read key file {path}: {e.strerror}") from None
    return PrivateKey.from_pem(data, password, source=path)


def put(
    ctx: typer.Context,
    file: str = typer.Argument("-", metavar="[FILE|-]", help="JSON file to publish; - or nothing reads stdin."),
    lines: bool = typer.Option(False, "--lines", "-l", help="Input is NDJSON: one message per line."),
    no_sign: bool = typer.Option(False, "--no-sign", help="Publish without adding a signature."),
    pem: str = typer.Option(None, "--pem", metavar="PATH[,PASSWORD]", help="Sign with this PKCS#8 PEM key instead of the repository's."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Store the valid messages; list the rejected ones on stderr."),
) -> None:
    """Publish messages and print one CID per message.

    The whole input is validated first: if any message is invalid nothing is stored and
    the error names its line. It is then stored in batches of core.batch-size messages,
    each wholly or not at all. With --skip-invalid the valid ones are stored, the rejected
    listed, and the exit status is 1 if any were rejected.
    """
    from mizu_core.errors import UsageError
    from mizu_core.publish.inputs import read_lines, read_text

    st = state(ctx)
    repo = st.repository()
    signer = _signer(pem)
    if no_sign and signer is not None:
        raise UsageError("--no-sign and --pem contradict each other")
    name = "stdin" if file == "-" else file
    try:
        opened = nullcontext(sys.stdin.buffer) if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as e:
        raise UsageError(f"cannot open {file}: {e.strerror}") from None
    with opened as stream:
        if lines:
            items: Iterator[Any] = read_lines(stream)
        else:
            items = iter([read_text(stream, name)])
        result = repo.publish(items, sign=not no_sign, signer=signer, skip_invalid=skip_invalid)
    if st.json:
        print_json({
            "cids": [str(c) for c in result.cids],
            "rejected": [{"where": r.where, "reason": r.reason} for r in result.rejected],
            "added": result.added, "triples": result.triples,
        })
    else:
        sys.stdout.write("".join(f"{c}\n" for c in result.cids))
    for r in result.rejected:
        warn(f"rejected {r.where}: {r.reason}")
    if result.rejected:
        raise typer.Exit(1)
