"""Shared fixtures: every test runs with its own HOME and no MIZU_* variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"  # third-party test data: data/*/README.md

# SPEC §1 vectors: (message, CID) — unsigned.
SPEC_VECTORS = [
    ({"text": "Hello, world!"}, "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"),
    ({"author": "solipsis", "content": "roses are red"},
     "bafyreierxqzf7k7a7nhbfdoq2hs4fnbrytfjlj4namu7bakzt55hz4uylu"),
    ({"author": "solipsis", "content": "violets are blue"},
     "bafyreibgpiqlk3y7xjbcse6ggm26zk7ovwqia5psmtqxp5gm4zohet3oua"),
    ({"author": "shakespeare", "content": "grass is green"},
     "bafyreifwkg6xtj52qioi7gs2bvxljfc4yynestkbgwswa5qkd5ifhhyiiy"),
]
RSA_VECTOR_CID = "bafyreicxbb5e4mcx6747b5ev3zhiyy74gi6ixaaamzpf4iwvtwtde6oxbm"


def rsa_vector_text() -> str:
    return (DATA / "vectors" / "tutorial-rsa-signed-message.json").read_text("utf-8")


def rsa_vector() -> dict:
    return json.loads(rsa_vector_text())


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in list(__import__("os").environ):
        if name.startswith("MIZU_"):
            monkeypatch.delenv(name)
