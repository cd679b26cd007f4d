"""mizu fsck: verify every block, signature and index entry."""

from __future__ import annotations

import typer

from mizu_cli.render import info, print_json, warn
from mizu_cli.state import state


def fsck(ctx: typer.Context) -> None:
    """Re-hash every block, re-verify every message and check the index against the blocks.

    Exits 1 and lists each problem if anything is wrong. Blocks that are referenced but not
    stored (partial replication) are listed too, as incomplete, without failing.
    """
    from mizu_core.repo.upkeep import fsck as check

    st = state(ctx)
    report = check(st.repository())
    if st.json:
        print_json({"ok": report.ok, "problems": report.problems, "incomplete": report.incomplete,
                    "blocks": report.blocks, "messages": report.messages, "triples": report.triples})
    else:
        for problem in report.problems:
            warn(f"problem: {problem}")
        if not (st.quiet and report.ok):
            for note in report.incomplete:
                warn(f"incomplete: {note}")
        status = "ok" if report.ok else f"{len(report.problems)} problems"
        missing = len(report.incomplete)
        incomplete = f", {missing} incomplete (referenced blocks not stored)" if missing else ""
        info(f"{status}: {report.blocks} blocks, {report.messages} messages, "
             f"{report.triples} triples checked{incomplete}", st.quiet and report.ok)
    if not report.ok:
        raise typer.Exit(1)
