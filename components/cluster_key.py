"""ClusterKey: one random key per cluster (the munge key Slurm's daemons authenticate each other with).

Every node and the controller need the same key; it must never be in plain text in the stack file, the
Pulumi state, logs or `plan --json`. Choice: a Pulumi secret held in the stack's state, not Key Vault.

- Key Vault would add a vault, a private endpoint, a role assignment and a boot-time fetch on every node,
  and the key still has to be generated somewhere before it is stored: the nodes cannot make it.
- A secret in state is encrypted with the stack's secrets provider (passphrase or a KMS such as Azure
  Key Vault keys, `azcluster up --secrets-provider`), masked in previews and in `plan --json`
  ("[secret]"), and reaches the nodes only inside their custom data, which Azure never returns in an
  API response (osProfile.customData is write-only; learn.microsoft.com/azure/virtual-machines/custom-data).

How it is generated without the pulumi-random provider: a dynamic resource whose only input is the key,
made here with `secrets.token_bytes`, registered as a secret and with `ignore_changes` on it. The first
`up` stores it; every later run makes a new candidate that `ignore_changes` discards, so the key stays
the one in state (pulumi.com/docs/iac/concepts/options/ignorechanges: ignored properties keep their old
value). Deleting the stack deletes the key with it.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pulumi
import pulumi.dynamic

MUNGE_KEY_BYTES = 128
"""munge's own `mungekey` default is 1024 bits (mungekey(8))."""


class _KeyProvider(pulumi.dynamic.ResourceProvider):
    """Stores the key it is given; nothing outside Pulumi's state is created."""

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(id_=secrets.token_hex(8), outs={"value": props["value"]})

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        # The only input is ignored after creation (ignore_changes): there is never a change to make.
        return pulumi.dynamic.DiffResult(changes=False)


def new_key(nbytes: int = MUNGE_KEY_BYTES) -> str:
    """A fresh random key, base64."""
    return base64.b64encode(secrets.token_bytes(nbytes)).decode()


def new_password() -> str:
    """A database password Azure accepts: 8-128 characters from at least three of upper case, lower case,
    digits and symbols (Azure Database for MySQL flexible server's administrator password rules). 32 random
    URL-safe characters (192 bits) behind a fixed `Az9-` that guarantees all four classes; no character a
    shell, slurmdbd.conf or a MySQL option file would read specially."""
    return "Az9-" + secrets.token_urlsafe(24)


class ClusterKey(pulumi.dynamic.Resource):
    """A random key generated once per stack and kept, as a secret, in its state. Output: `value` (base64)."""

    value: pulumi.Output[str]

    def __init__(
        self, name: str, opts: pulumi.ResourceOptions | None = None, *, value: str | None = None
    ) -> None:
        """`value`: the candidate to store on the first `up` (default: a munge key, `new_key()`); the
        accounting database's password passes `new_password()`."""
        options = pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(additional_secret_outputs=["value"], ignore_changes=["value"]),
        )
        candidate = value if value is not None else new_key()
        super().__init__(_KeyProvider(), name, {"value": pulumi.Output.secret(candidate)}, options)
