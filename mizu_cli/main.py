"""The `mizu` command: global options, the command table, and the one place errors become
exit codes and one-line messages (SPEC §7)."""

from __future__ import annotations

import importlib
import inspect
import signal
import sys
from collections.abc import Iterator, Mapping
from types import MethodType
from typing import Any

import click
import typer
from typer.core import TyperGroup
from typer.main import get_command, get_group

from mizu_cli.exits import report
from mizu_cli.state import State

# The global options: State field → (flags, metavar, help). Each is accepted before the
# command (the app's callback) and after it (added to every command by _with_global_options).
GLOBALS: dict[str, tuple[tuple[str, ...], str | None, str]] = {
    "repo_arg": (("--repo",), "PATH", "Repository to use (default: $MIZU_DIR, else the nearest .mizu upward)."),
    "quiet": (("--quiet", "-q"), None, "Print only what scripts need."),
    "verbose": (("--verbose", "-v"), None, "Show tracebacks on errors."),
    "json": (("--json",), None, "Machine-readable output where a command has one."),
}
REPO, QUIET, VERBOSE, JSON = "repo_arg", "quiet", "verbose", "json"  # VERBOSE: every command

# name → (module under mizu_cli.commands, aliases, the global options it uses). Like git's
# command table: one line each. A global option a command does not use is still accepted
# after it (its place on the line never changes what it means), but not listed in its help.
COMMANDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "init": ("init", (), (QUIET,)),
    "put": ("put", ("publish",), (REPO, JSON)),
    "view": ("view", ("view-raw",), (REPO,)),
    "log": ("log", (), (REPO, JSON, QUIET)),
    "query": ("query", (), (REPO, JSON)),
    "config": ("config", (), (REPO,)),
    "pin": ("pins", (), (REPO,)),
    "unpin": ("pins", (), (REPO,)),
    "gc": ("gc", (), (REPO, JSON, QUIET)),
    "fsck": ("fsck", (), (REPO, JSON, QUIET)),
    "keygen": ("keygen", (), ()),
    "add": ("add", (), (REPO, QUIET)),
    "cat": ("cat", (), (REPO,)),
    "ls": ("ls", (), (REPO, JSON)),
    "get": ("get", (), (REPO, QUIET)),
    "backup": ("backup", (), (REPO, JSON, QUIET)),
    "export": ("export", (), (REPO, QUIET)),
    "import": ("import_", (), (REPO, JSON, QUIET)),
    "id": ("id", (), (REPO, JSON)),
    "subscribe": ("subscribe", (), (REPO, QUIET)),
    "unsubscribe": ("subscribe", (), (REPO,)),
    "subscriptions": ("subscribe", (), (REPO, JSON)),
    "pull": ("pull", (), (REPO, JSON, QUIET)),
    "push": ("pull", (), (REPO, JSON, QUIET)),
    "serve": ("serve", (), (REPO, QUIET)),
    "remote": ("remote", (), (REPO, JSON)),
    "swarm": ("swarm", (), ()),
}

SETTINGS: dict[str, Any] = {
    "add_completion": False, "rich_markup_mode": None, "pretty_exceptions_enable": False,
    "suggest_commands": False,  # click suggests already; typer would say it twice
}
ALIASES = {alias: name for name, (_, aliases, _) in COMMANDS.items() for alias in aliases}


class _Commands(Mapping[str, click.Command]):
    """The command table as click reads it, building a command only when it is looked up:
    typer makes each command's options from its signature (about 2 ms each), which every
    run used to pay for all of them. Aliases resolve and are offered for typos; `--help`
    lists COMMANDS only."""

    def __init__(self) -> None:
        self._built: dict[str, click.Command] = {}

    def __iter__(self) -> Iterator[str]:
        return iter((*COMMANDS, *ALIASES))

    def __len__(self) -> int:
        return len(COMMANDS) + len(ALIASES)

    def __getitem__(self, name: str) -> click.Command:
        if name not in COMMANDS and name not in ALIASES:
            raise KeyError(name)  # click looks up with Mapping.get: "no such command"
        if name not in self._built:
            try:
                self._built[name] = _build(ALIASES.get(name, name), name)
            except KeyError as e:  # a bug in the command, which must not read as a missing one
                raise RuntimeError(f"cannot build command {name!r}: KeyError {e}") from e
        return self._built[name]


def _target(name: str) -> Any:
    """What implements a command: its module's Typer `app`, or the function named after it
    (`import_` where the name is a keyword, `_` for `-`)."""
    module_name = COMMANDS[name][0]
    module = importlib.import_module(f"mizu_cli.commands.{module_name}")
    function = name.replace("-", "_")
    return getattr(module, "app", None) or getattr(module, function, None) or getattr(module, module_name)


def _build(name: str, called: str) -> click.Command:
    """One command as typer would build it inside the whole app (same settings), taking the
    global options after it too."""
    target = _target(name)
    one = typer.Typer(**SETTINGS)
    if isinstance(target, typer.Typer):
        one.add_typer(target, name=called)
    else:
        one.command(called)(target)
    command = get_group(one).commands[called]
    _with_global_options(command, COMMANDS[name][2])
    return command


class _GlobalOption(click.Option):
    """A global option given after the command: it sets the State the app's callback made,
    over what was given before the command."""

    def __init__(self, name: str, flags: list[str], metavar: str | None, help: str, listed: bool) -> None:
        super().__init__([name, *flags], metavar=metavar, help=help, is_flag=metavar is None,
                         expose_value=False, hidden=not listed, callback=self._set)

    @staticmethod
    def _set(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        root = ctx.find_root().obj
        if value and isinstance(root, State):
            setattr(root, str(param.name), value)


def _with_global_options(command: click.Command, uses: tuple[str, ...]) -> None:
    """Add the global options to `command` (and to its subcommands), under their own heading
    in its help; a flag the command already defines for itself stays its own (add's -Q)."""
    taken = {flag for param in command.params for flag in param.opts + param.secondary_opts}
    for name, (flags, metavar, help) in GLOBALS.items():
        free = [flag for flag in flags if flag not in taken]
        if free:
            listed = name in uses or name == VERBOSE
            command.params.append(_GlobalOption(name, free, metavar, help, listed))
    command.format_options = MethodType(_format_options, command)  # type: ignore[method-assign]
    for sub in getattr(command, "commands", {}).values():
        _with_global_options(sub, uses)


def _format_options(self: click.Command, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    """A command's arguments, its own options, then the global options it takes."""
    sections: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": [], "Global options": []}
    for param in self.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            heading = ("Global options" if isinstance(param, _GlobalOption)
                       else "Arguments" if param.param_type_name == "argument" else "Options")
            sections[heading].append(record)
    for heading, rows in sections.items():
        if rows:
            with formatter.section(heading):
                formatter.write_dl(rows)
    if isinstance(self, click.Group):
        self.format_commands(ctx, formatter)


def _summary(name: str) -> str:
    """A command's help text without building it (a group's: its `help=`, else the
    docstring of its callback, as typer does)."""
    target = _target(name)
    if not isinstance(target, typer.Typer):
        return inspect.getdoc(target) or ""
    if isinstance(target.info.help, str):  # else typer's placeholder for "not given"
        return target.info.help
    callback = target.registered_callback
    return (inspect.getdoc(callback.callback) if callback and callback.callback else None) or ""


class _LazyGroup(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands()  # type: ignore[assignment]  # click only reads it

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)  # typer's would build every command to list them

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # As click does, from each command's help text rather than from built commands.
        limit = formatter.width - 6 - max(map(len, COMMANDS))
        rows = [(name, click.Command(name, help=_summary(name)).get_short_help_str(limit)) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="mizu",
    help="Publish, query and share signed, content-addressed JSON messages.",
    no_args_is_help=True,
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    **SETTINGS,
)


def _version(value: bool) -> None:
    if value:
        from mizu_core import __version__

        print(f"mizu {__version__}")
        raise typer.Exit()


def _global(name: str, default: Any) -> Any:
    flags, metavar, help = GLOBALS[name]
    return typer.Option(default, *flags, metavar=metavar, help=help)


@app.callback()
def global_options(
    ctx: typer.Context,
    repo: str = _global(REPO, None),
    quiet: bool = _global(QUIET, False),
    verbose: bool = _global(VERBOSE, False),
    json_output: bool = _global(JSON, False),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    ctx.obj = State(repo_arg=repo, quiet=quiet, verbose=verbose, json=json_output)
    ctx.call_on_close(ctx.obj.close)


def rendered_overview() -> str:
    """`mizu --help` as click prints it from a terminal at least 80 columns wide (what
    entry.py prints from mizu_cli/overview.py)."""
    import click.formatting

    command = get_command(app)
    saved, click.formatting.FORCED_WIDTH = click.formatting.FORCED_WIDTH, 78
    try:
        with command.make_context("mizu", [], resilient_parsing=True) as ctx:
            return ctx.get_help() + "\n"
    finally:
        click.formatting.FORCED_WIDTH = saved


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the `mizu` script; returns only through sys.exit."""
    from mizu_core.errors import MizuError

    args = sys.argv[1:] if argv is None else argv
    if argv is None:
        # `mizu log | head`: end quietly when the reader goes away, as git and cat do.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    verbose = "-v" in args or "--verbose" in args
    command = get_command(app)
    try:
        # Without standalone mode, click returns the code of a typer.Exit instead of exiting.
        code = command.main(args=args, prog_name="mizu", standalone_mode=False)
    except MizuError as e:
        sys.exit(report(e, verbose))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        exit_code = _click_exit(e)
        if exit_code is not None:
            sys.exit(exit_code)
        if verbose:
            raise
        sys.exit(report(e))
    sys.exit(code if isinstance(code, int) else 0)


def _click_exit(error: Exception) -> int | None:
    """Exit code of typer's own (click) exceptions: usage errors (2), aborts, explicit exits."""
    if isinstance(error, click.exceptions.Exit):
        return error.exit_code
    if isinstance(error, click.Abort):
        print("aborted", file=sys.stderr)
        return 1
    if isinstance(error, click.exceptions.NoArgsIsHelpError) and error.ctx is not None:
        print(error.ctx.get_help())  # `mizu` or `mizu config` alone: the help, as asked
        return 0
    if isinstance(error, click.UsageError):
        print(f"error: {error.format_message()}", file=sys.stderr)
        if error.ctx is not None:
            print(f"hint: see '{error.ctx.command_path} --help'", file=sys.stderr)
        return 2
    if isinstance(error, click.ClickException):
        print(f"error: {error.format_message()}", file=sys.stderr)
        return error.exit_code
    return None
