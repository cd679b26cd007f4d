"""Configuration files: `.mizu/config.toml` and the user's global `config.toml`.

Keys are `section.name` as in git. Values given as text are stored typed: `true`/`false`
become booleans, integers become integers, anything else stays a string. The repository
file wins over the global one.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from mizu_core.errors import MizuError, UsageError

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$")


def global_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "mizu" / "config.toml"


def parse_value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    return text


def _check_key(key: str) -> list[str]:
    if not _KEY.match(key):
        raise UsageError(f"invalid config key '{key}'", hint="keys look like section.name")
    return key.split(".")


class ConfigFile:
    """One TOML file, read on open and rewritten atomically on change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path.exists():
            try:
                self.data = tomllib.loads(path.read_text("utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise MizuError(f"cannot parse {path}: {e}") from None

    def get(self, key: str) -> Any:
        node: Any = self.data
        for part in _check_key(key):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def set(self, key: str, value: Any) -> None:
        parts = _check_key(key)
        node = self.data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UsageError(f"'{part}' in '{key}' is a value, not a section")
            node = child
        node[parts[-1]] = value
        self.save()

    def unset(self, key: str) -> bool:
        parts = _check_key(key)
        node: Any = self.data
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

        walk(self.data, "")
        return out

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(tomli_w.dumps(self.data), "utf-8")
        os.replace(tmp, self.path)


class Config:
    """The effective configuration: repository values over global ones."""

    def __init__(self, repo_file: ConfigFile | None, global_file: ConfigFile) -> None:
        self.repo_file = repo_file
        self.global_file = global_file

    def get(self, key: str, default: Any = None) -> Any:
        for f in (self.repo_file, self.global_file):
            if f is not None:
                value = f.get(key)
                if value is not None:
                    return value
        return default

    def section(self, name: str) -> dict[str, Any]:
        """A whole section (`remote`), repository entries over global ones."""
        merged: dict[str, Any] = {}
        for f in (self.global_file, self.repo_file):
            value = f.data.get(name) if f is not None else None
            if isinstance(value, dict):
                merged.update(value)
        return merged

    def positive_int(self, key: str, default: int) -> int:
        """An integer setting that must be positive; a bad value is an error naming it."""
        value = self.get(key, default)
        if type(value) is not int or value <= 0:
            raise MizuError(
                f"config {key} = {value!r} is not a positive integer",
                hint=f"mizu config set {key} {default}",
            )
        return value

    def items(self) -> list[tuple[str, Any]]:
        merged = dict(self.global_file.items())
        if self.repo_file is not None:
            merged.update(self.repo_file.items())
        return sorted(merged.items())
