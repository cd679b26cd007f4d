"""Configuration files: `.mizu/config.toml` and the user's global `config.toml`.

Keys are `section.name` as in git. The keys Mizu reads are in `KEYS`, with their type,
range and default: `config set` refuses a value outside them, and reading one that a
hand-edited file holds is an error naming the key (and how to repair it). Other values
given as text are stored typed: `true`/`false` become booleans, integers that fit in 64
bits become integers, anything else stays a string. The repository file wins over the
global one. A file that is not TOML is an error for every reader, and `config set` or
`unset` keeps it aside and starts a new one, so `mizu config` can always repair it.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from mizu_core.errors import MizuError, UsageError, shorten

FILE = "config.toml"  # in the .mizu folder, and in the global folder
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+")
_INT = re.compile(r"-?[0-9]{1,19}")  # more digits cannot fit in 64 bits
_NUMBER = re.compile(r"[0-9]{1,19}(\.[0-9]{1,9})?")
_INT64 = range(-(1 << 63), 1 << 63)
MAX_FILE = 1 << 20  # bytes: a configuration file is a few lines
MAX_DEPTH = 32  # tables and arrays nested in a file, parts of a key: far past any use, and
# well within what the TOML reader and writer take (they recurse)


@dataclass(frozen=True)
class Key:
    """A key Mizu reads: `kind` is what its value must be (`int`: an integer from `low` to
    `high`; `seconds`: an integer or decimal number from `low` to `high`; `bool`; `text`: a
    string, one of `choices` if given; `texts`: a string or a list of strings; `any`:
    whatever TOML holds), `default` what it is when unset (None: not set)."""

    kind: str
    default: Any = None
    low: int | float | None = None
    high: int | float | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: Any) -> str | None:
        """What is wrong with `value`, or None."""
        kind = self.kind
        if kind in ("int", "seconds"):
            number = type(value) is int or (kind == "seconds" and type(value) is float and math.isfinite(value))
            if not number or not self.low <= value <= self.high:
                return f"must be {self.describe()}"
        elif kind == "bool" and type(value) is not bool:
            return "must be true or false"
        elif kind == "text" and type(value) is not str:
            return "must be text"
        elif self.choices and value not in self.choices:
            return f"must be {self.describe()}"
        elif kind == "texts" and not (
            type(value) is str or (type(value) is list and all(type(v) is str for v in value))
        ):
            return "must be text or a list of text"
        return None

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind == "int":
            return f"an integer from {self.low} to {self.high}"
        if self.kind == "seconds":
            return f"a number of seconds from {self.low} to {self.high}"
        return {"bool": "true or false", "text": "text", "texts": "text"}.get(self.kind, "text")

    def parse(self, text: str) -> Any:
        """The value `config set` stores for `text` (not yet checked against the range)."""
        if self.kind == "int" and _INT.fullmatch(text):
            return int(text)
        if self.kind == "seconds" and _NUMBER.fullmatch(text):
            return int(text) if "." not in text else float(text)
        if self.kind == "bool" and text in ("true", "false"):
            return text == "true"
        if self.kind in ("int", "seconds", "bool"):
            return text  # refused by check, naming what it must be
        return text  # text, texts, any: as given (a swarm key file named 42 stays a name)


# The keys Mizu reads: one line each. Adding a key: add its line here, read it with
# `config.get(KEY)` (which returns the checked value, or the default), and describe it in
# man/mizu-config.1. Its section then refuses unknown keys (see `SECTIONS`).
KEYS: dict[str, Key] = {
    "core.version": Key("int", 1, 1, 1),
    "core.batch-size": Key("int", 15_000, 1, 1 << 31),
    "core.batch-memory": Key("int", 160 << 20, 1, 1 << 40),
    "store.map-size": Key("int", 1 << 36, 1 << 20, 1 << 46),
    "serve.listen": Key("texts"),
    "serve.recheck-interval": Key("int", 15, 1, 86_400),
    "serve.asked-feeds": Key("text", "announce", choices=("answer", "announce", "follow")),
    "serve.asked-feeds-max": Key("int", 64, 0, 100_000),
    "swarm.key-file": Key("text"),
    # The HTTP gateway (man/mizu-gateway.7): what one request may cost.
    "gateway.hosts": Key("texts"),  # Host names served besides loopback ones and the bound host
    "gateway.client-timeout": Key("seconds", 30, 1, 3600),  # an answer left unread this long: dropped
    "gateway.max-body": Key("int", 16 << 20, 1, 1 << 34),  # bytes of a request body
    "gateway.max-queries": Key("int", 8, 1, 1024),  # queries answered at once; more get 503
    "gateway.max-watchers": Key("int", 100, 0, 10_000),  # live answers open at once; more get 503
    "gateway.query-timeout": Key("seconds", 10, 0.001, 86_400),
    "filters.pin": Key("any"),
    "filters.private": Key("any"),
    "filters.block": Key("any"),
    "filters.discard": Key("any"),
    "query.timeout": Key("seconds", 30, 0, 86_400),  # 0: no limit
    "files.max-entries": Key("int", 1_000_000, 1, 1 << 40),
    "files.max-depth": Key("int", 256, 1, 4096),
}

# Sections whose keys are all Mizu's: `config set` refuses a key of theirs that Mizu does
# not read (a typo would otherwise be stored and silently ignored). Other sections (`user`,
# `remote`, a tool's own) take any key.
SECTIONS = frozenset(key.split(".")[0] for key in KEYS)


def global_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "mizu" / FILE


def parse_value(text: str) -> Any:
    """A value given as text for a key Mizu does not read: typed as TOML can hold it."""
    if text in ("true", "false"):
        return text == "true"
    if _INT.fullmatch(text) and int(text) in _INT64:
        return int(text)
    return text


def shown(value: Any) -> str:
    """`value` for an error line: its repr, cut short (one line, however long or odd)."""
    return shorten(repr(value), 60)


def check_key(key: str) -> list[str]:
    if not _KEY.fullmatch(key):
        raise UsageError(f"invalid config key {shown(key)}", hint="keys look like section.name")
    parts = key.split(".")
    if len(parts) > MAX_DEPTH:
        raise UsageError(f"invalid config key {shown(key)}: more than {MAX_DEPTH} parts")
    return parts


def _depth(value: Any) -> int:
    """How deep tables and arrays nest in `value` (iteratively: it may be deep)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        node, depth = todo.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
            todo.extend((child, depth + 1) for child in children)
    return deepest


def checked_value(key: str, text: str) -> Any:
    """The value `config set KEY TEXT` stores, or a UsageError saying why not."""
    parts = check_key(key)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"config {key}: the value is not valid UTF-8 text") from None
    spec = KEYS.get(key)
    if spec is None:
        if parts[0] in SECTIONS:
            known = ", ".join(k for k in KEYS if k.split(".")[0] == parts[0])
            raise UsageError(f"unknown config key '{key}' (section {parts[0]} has {known})")
        return parse_value(text)
    value = spec.parse(text)
    problem = spec.check(value)
    if problem:
        raise UsageError(f"config {key} {problem}, not {shown(text)}")
    return value


class ConfigFile:
    """One TOML file, read on open and rewritten atomically on change.

    A file that cannot be read as TOML is `broken` (why, in a sentence): reading it is an
    error, and `start_afresh` keeps it aside so that a new one can be written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        self.broken: str | None = None
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_FILE + 1)
        except FileNotFoundError:
            return
        except OSError as e:
            self.broken = f"cannot read it: {e.strerror}"
            return
        if len(raw) > MAX_FILE:
            self.broken = f"it is larger than {MAX_FILE} bytes"
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.broken = "it is not UTF-8 text"
            return
        try:
            data = tomllib.loads(text)
        except RecursionError:
            self.broken = f"it nests deeper than {MAX_DEPTH} levels"
            return
        except (tomllib.TOMLDecodeError, ValueError) as e:
            reason = " ".join(str(e).split())  # one line, however odd the file
            self.broken = f"it is not TOML ({reason[:120]})"
            return
        if _depth(data) > MAX_DEPTH:
            self.broken = f"it nests deeper than {MAX_DEPTH} levels"
            return
        self.data = data

    def _readable(self) -> dict[str, Any]:
        if self.broken is not None:
            option = " --global" if self.path == global_config_path() else ""
            raise MizuError(
                f"cannot use {self.path}: {self.broken}",
                hint=f"edit it, or start a new one with 'mizu config set{option} KEY VALUE'",
            )
        return self.data

    def get(self, key: str) -> Any:
        node: Any = self._readable()
        for part in check_key(key):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def start_afresh(self) -> Path:
        """Keep a broken file aside (`config.toml.broken`, or `-2`, `-3`, …) and start an
        empty one; returns where the old one went."""
        n, aside = 1, self.path.with_name(self.path.name + ".broken")
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.broken-{n}")
        try:
            os.replace(self.path, aside)
        except OSError as e:
            raise MizuError(f"cannot move {self.path} aside: {e.strerror}") from None
        self.data, self.broken = {}, None
        return aside

    def set(self, key: str, value: Any) -> None:
        parts = check_key(key)
        node = self._readable()
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UsageError(f"'{part}' in '{key}' is a value, not a section")
            node = child
        node[parts[-1]] = value
        self.save()

    def unset(self, key: str) -> bool:
        parts = check_key(key)
        node: Any = self._readable()
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or parts[-1] not in node:
            return False
        del node[parts[-1]]
        self.save()
        return True

    def items(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []

        def walk(node: dict[str, Any], prefix: str) -> None:
            for k, v in node.items():
                if isinstance(v, dict):
                    walk(v, f"{prefix}{k}.")
                else:
                    out.append((prefix + k, v))

        walk(self._readable(), "")
        return out

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(tomli_w.dumps(self.data), "utf-8")
            os.replace(tmp, self.path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            from mizu_core.repo.disk import full_disk

            full = full_disk(e, str(self.path.parent))
            if full is not None:
                raise full from None
            raise MizuError(f"cannot write {self.path}: {e.strerror}") from None


class Config:
    """The effective configuration: repository values over global ones."""

    def __init__(self, repo_file: ConfigFile | None, global_file: ConfigFile) -> None:
        self.repo_file = repo_file
        self.global_file = global_file

    @classmethod
    def of_repository(cls, mizu: Path) -> Config:
        """The configuration of the repository in the `.mizu` folder `mizu`."""
        return cls(ConfigFile(mizu / FILE), ConfigFile(global_config_path()))

    def _files(self) -> list[ConfigFile]:
        files = [f for f in (self.repo_file, self.global_file) if f is not None]
        for f in files:
            f._readable()  # a broken file is an error whichever key is asked for
        return files

    def raw(self, key: str) -> tuple[Any, ConfigFile | None]:
        """The value as the files hold it, unchecked, and the file it is from."""
        for f in self._files():
            value = f.get(key)
            if value is not None:
                return value, f
        return None, None

    def get(self, key: str, default: Any = None) -> Any:
        """The value of `key`; for a key in `KEYS`, checked (a bad one is an error naming
        it and how to repair it), and its default (or `default`) when unset."""
        value, source = self.raw(key)
        spec = KEYS.get(key)
        if spec is None:
            return default if value is None else value
        if value is None:
            return spec.default if default is None else default
        problem = spec.check(value)
        if problem is not None:
            option = " --global" if source is self.global_file else ""
            fallback = spec.default if default is None else default
            back = f" (back to {fallback})" if fallback is not None else ""
            raise MizuError(
                f"config {key} = {shown(value)} {problem}",
                hint=f"mizu config set{option} {key} VALUE, or mizu config unset{option} {key}{back}",
            )
        return value

    def section(self, name: str) -> dict[str, Any]:
        """A whole section (`remote`), repository entries over global ones."""
        merged: dict[str, Any] = {}
        for f in reversed(self._files()):
            value = f.data.get(name)
            if isinstance(value, dict):
                merged.update(value)
        return merged

    def items(self) -> list[tuple[str, Any]]:
        merged = dict(self.global_file.items())
        if self.repo_file is not None:
            merged.update(self.repo_file.items())
        return sorted(merged.items())
