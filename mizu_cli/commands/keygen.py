"""mizu keygen: print a new private key as PKCS#8 PEM."""

from __future__ import annotations

import os
import sys

import typer


def keygen(
    key_type: str = typer.Option("ed25519", "--type", "-t", help="ed25519, rsa, secp256k1 or ecdsa."),
    password: bool = typer.Option(False, "--password", help="Encrypt the key; the password comes from MIZU_KEY_PASSWORD or a prompt."),
) -> None:
    """Print a new private key (PKCS#8 PEM) on stdout, for `mizu put --pem`."""
    from mizu_core.errors import UsageError
    from mizu_core.message.keys import PrivateKey

    secret = None
    if password:
        secret = os.environ.get("MIZU_KEY_PASSWORD")
        if not secret:
            if not sys.stdin.isatty():
                raise UsageError("--password needs MIZU_KEY_PASSWORD or a terminal to ask on")
            secret = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    key = PrivateKey.generate(key_type)
    sys.stdout.write(key.to_pem(secret).decode("ascii"))
