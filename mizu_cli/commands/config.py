"""mizu config get|set|unset|list: repository and global configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from mizu_cli.state import state

if TYPE_CHECKING:
    from mizu_core.repo.config import ConfigFile

app = typer.Typer(help="Read and write configuration (section.name keys).", no_args_is_help=True)

GLOBAL = typer.Option(False, "--global", help="Use the user's global file instead of the repository's.")


def _file(ctx: typer.Context, use_global: bool) -> ConfigFile:
    from mizu_core.repo.config import ConfigFile, global_config_path

    if use_global:
        return ConfigFile(global_config_path())
    repo = state(ctx).repository()
    assert repo.config.repo_file is not None
    return repo.config.repo_file


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@app.command("get")
def get(ctx: typer.Context, key: str, use_global: bool = GLOBAL) -> None:
    """Print the value of KEY (repository over global unless --global); exit 1 if unset."""
    config = _file(ctx, True) if use_global else state(ctx).repository().config
    value = config.get(key)
    if value is None:
        raise typer.Exit(1)
    if isinstance(value, dict):
        from mizu_core.errors import UsageError

        raise UsageError(f"'{key}' is a section, not a value", hint="mizu config list")
    print(_show(value))


@app.command("set")
def set_(ctx: typer.Context, key: str, value: str, use_global: bool = GLOBAL) -> None:
    """Set KEY to VALUE (true/false and integers are stored typed)."""
    from mizu_core.repo.config import parse_value

    _file(ctx, use_global).set(key, parse_value(value))


@app.command("unset")
def unset(ctx: typer.Context, key: str, use_global: bool = GLOBAL) -> None:
    """Remove KEY; exit 1 if it was not set."""
    if not _file(ctx, use_global).unset(key):
        raise typer.Exit(1)


@app.command("list")
def list_(ctx: typer.Context, use_global: bool = GLOBAL) -> None:
    """Print every key=value (the effective configuration unless --global)."""
    items = _file(ctx, True).items() if use_global else state(ctx).repository().config.items()
    for key, value in items:
        print(f"{key}={_show(value)}")
