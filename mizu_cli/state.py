"""Global options as parsed once by the `mizu` callback, and the repository they name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typer for the annotation only: entry.py runs `view` without it
    from pathlib import Path

    import typer

    from mizu_core.api import Repository


@dataclass
class State:
    repo_arg: str | None = None
    quiet: bool = False
    verbose: bool = False
    json: bool = False
    _repo: Repository | None = field(default=None, repr=False)

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def repository_path(self) -> Path:
        """The `.mizu` folder these options name, without opening it (for `config`)."""
        from mizu_core.repo.repository import find_repository

        return find_repository(self.repo_arg)

    def repository(self) -> Repository:
        """Open the repository these options name (once per command)."""
        if self._repo is None:
            from mizu_core.api import Repository
            from mizu_core.repo.repository import find_repository

            self._repo = Repository.open(find_repository(self.repo_arg))
        return self._repo


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()
