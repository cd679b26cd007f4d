"""mizu config get|set|unset|list: repository and global configuration.

It reads and writes the files alone, never the store: a value that stops the store from
opening (or a file that is not TOML) can always be repaired from here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from mizu_cli.render import warn
from mizu_cli.state import state

if TYPE_CHECKING:
    from mizu_core.repo.config import Config, ConfigFile

app = typer.Typer(help="Read and write configuration (section.name keys).", no_args_is_help=True)

GLOBAL = typer.Option(False, "--global", help="Use the user's global file instead of the repository's.")


def _config(ctx: typer.Context) -> Config:
    """The effective configuration of the repository the global options name."""
    from mizu_core.repo.config import Config

    return Config.of_repository(state(ctx).repository_path())


def _file(ctx: typer.Context, use_global: bool) -> ConfigFile:
    from mizu_core.repo.config import ConfigFile, global_config_path

    if use_global:
        return ConfigFile(global_config_path())
    config = _config(ctx)
    assert config.repo_file is not None
    return config.repo_file


def _writable(ctx: typer.Context, use_global: bool, file: ConfigFile | None = None) -> ConfigFile:
    """The file to change; one that is not TOML is kept aside and a new one started."""
    file = file or _file(ctx, use_global)
    if file.broken is not None:
        reason = file.broken
        aside = file.start_afresh()
        warn(f"warning: {file.path} could not be used ({reason}); kept it as {aside.name} and started a new one")
        if not use_global:
            file.data["core"] = {"version": 1}
        file.save()  # at once: a repository is a folder with its config.toml
    return file


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@app.command("get")
def get(ctx: typer.Context, key: str, use_global: bool = GLOBAL) -> None:
    """Print the value of KEY (repository over global unless --global); exit 1 if unset."""
    if use_global:
        value = _file(ctx, True).get(key)
    else:
        value, _ = _config(ctx).raw(key)  # as stored, even a bad value: to see what to repair
    if value is None:
        raise typer.Exit(1)
    if isinstance(value, dict):
        from mizu_core.errors import UsageError

        raise UsageError(f"'{key}' is a section, not a value", hint="mizu config list")
    print(_show(value))


@app.command("set")
def set_(ctx: typer.Context, key: str, value: str, use_global: bool = GLOBAL) -> None:
    """Set KEY to VALUE (true/false and integers are stored typed; the keys Mizu reads
    must hold what mizu-config(1) says)."""
    from mizu_core.repo.config import checked_value

    checked = checked_value(key, value)  # before anything is written or moved
    _writable(ctx, use_global).set(key, checked)


@app.command("unset")
def unset(ctx: typer.Context, key: str, use_global: bool = GLOBAL) -> None:
    """Remove KEY; exit 1 if it was not set."""
    from mizu_core.repo.config import check_key

    check_key(key)
    file = _file(ctx, use_global)
    repaired = file.broken is not None
    if not _writable(ctx, use_global, file).unset(key) and not repaired:
        raise typer.Exit(1)


@app.command("list")
def list_(ctx: typer.Context, use_global: bool = GLOBAL) -> None:
    """Print every key=value (the effective configuration unless --global)."""
    items = _file(ctx, True).items() if use_global else _config(ctx).items()
    for key, value in items:
        print(f"{key}={_show(value)}")
