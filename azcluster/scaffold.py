"""`azcluster init`: write a commented stack file that validates as written.

The comments teach the stack file's keys and their allowed values, so a new user can edit it without
opening the docs. The file is checked with the same rules as `validate` before it is written; an existing
stack is never overwritten without --force.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from azcluster.components import catalog
from azcluster.components.findings import has_errors

from .errors import EXIT_REFUSED, EXIT_USAGE, AzclusterError

KEY_CANDIDATES = ("~/.ssh/id_ed25519.pub", "~/.ssh/id_rsa.pub")

TEMPLATE = """\
# azcluster stack `{name}`: a GPU cluster on Azure. Check it with `azcluster validate {name}`,
# see what it builds and costs with `azcluster plan {name}`, then `azcluster up {name}`.
# Every key is described by `azcluster schema` (JSON Schema, for editor completion).
config:
  # Azure region (programmatic name, e.g. eastus, westeurope, southcentralus).
  azure-native:location: {location}
  azcluster:cluster:
    # Prefix of every resource name: lower-case letters, digits and '-'.
    name: {name}
    # Availability zone '1', '2' or '3' for zonal resources (Managed Lustre needs one). Remove for none.
    zone: "1"
    tags:
      owner: {name}
    network:
      # Private IPv4 range of the cluster's virtual network; subnets are carved from it.
      address_space: 10.42.0.0/16
      # Azure Bastion is how you reach the login node: nodes never get public IPs.
      bastion: true
      # Outbound internet for nodes (package mirrors, containers) through a NAT gateway.
      nat_gateway: true
    pools:
      # One pool = identical GPU nodes. InfiniBand sizes are split into islands of at most
      # island_max_nodes (default 100; Azure support can raise the limit to 300), one scale set each.
      - name: gpu
        # GPU VM size; `azcluster skus` lists them (ND H100 v5, ND H200 v5, ND A100 v4, MI300X v5, ...).
        size: {size}
        nodes: {nodes}
        # Spot VMs are cheaper but can be evicted at any time (true/false).
        spot: false
    login:
      # A small VM to log in to, reached through Bastion.
      enabled: true
      size: Standard_D4s_v5
    storage:
{lustre}      blob:
        # A storage account for data and checkpoints (private endpoint only).
        enabled: false
    ssh:
      admin_username: azureuser
      # OpenSSH public keys: key text, or a path to a .pub file (relative to this file, ~ allowed).
      public_keys:{keys}
    # Finding ids to silence (see `azcluster validate`), e.g. [AZC012].
    suppress: []
"""

LUSTRE_BLOCK = """\
      # Azure Managed Lustre. sku: AMLFS-Durable-Premium-40 | -125 | -250 | -500 (MB/s per TiB);
      # capacity_tib must be within the SKU's range and a multiple of its step (see `azcluster validate`).
      lustre:
        sku: {sku}
        capacity_tib: {tib}
"""
NO_LUSTRE = "      # lustre: {sku: AMLFS-Durable-Premium-250, capacity_tib: 8}   # Azure Managed Lustre\n"


@dataclass(frozen=True)
class ScaffoldResult:
    path: Path
    key_source: str | None


def find_public_key() -> tuple[str, str] | None:
    """(key text, where it came from) for the user's default SSH public key, if any."""
    for candidate in KEY_CANDIDATES:
        path = Path(candidate).expanduser()
        if path.is_file():
            text = path.read_text(encoding="utf-8").strip()
            if text:
                return text, str(path)
    return None


def lustre_sku_for(tib: int) -> str:
    """The fastest SKU whose range and step accept `tib` (500 before 250 before 125 before 40)."""
    for sku in sorted(catalog.lustre_skus().values(), key=lambda s: -s.mbps_per_tib):
        if sku.min_tib <= tib <= sku.max_tib and tib % sku.step_tib == 0:
            return sku.name
    raise AzclusterError(
        f"no Managed Lustre SKU takes {tib} TiB",
        "use a multiple of 4 TiB up to 128 (Premium-500), or of 48 TiB up to 768 (Premium-40)",
        EXIT_USAGE,
    )


def render_stack(name: str, size: str, nodes: int, location: str, lustre_tib: int, key: str | None) -> str:
    lustre = LUSTRE_BLOCK.format(sku=lustre_sku_for(lustre_tib), tib=lustre_tib) if lustre_tib else NO_LUSTRE
    keys = f"\n        - {json.dumps(key)}" if key else " []"
    return TEMPLATE.format(name=name, size=size, nodes=nodes, location=location, lustre=lustre, keys=keys)


def write_stack(
    path: Path, name: str, size: str, nodes: int, location: str, lustre_tib: int, force: bool = False
) -> ScaffoldResult:
    if path.exists() and not force:
        raise AzclusterError(
            f"{path} already exists", "pick another name, or pass --force to overwrite it", EXIT_USAGE
        )
    found = find_public_key()
    text = render_stack(name, size, nodes, location, lustre_tib, found[0] if found else None)
    _refuse_invalid(text, path, ignore_missing_key=found is None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return ScaffoldResult(path, found[1] if found else None)


def _refuse_invalid(text: str, path: Path, ignore_missing_key: bool) -> None:
    """Validate before writing, so `init` never leaves a stack that fails for reasons of its own making."""
    from ruamel.yaml import YAML

    from azcluster.components import rules
    from azcluster.components.spec import parse_cluster

    config = YAML(typ="safe", pure=True).load(text)["config"]
    try:
        spec = parse_cluster(config, base_dir=path.parent)
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        raise AzclusterError(f"these options do not make a valid cluster: {err}", "", EXIT_USAGE) from None
    findings = [f for f in rules.check(spec) if not (ignore_missing_key and "ssh.public_keys" in f.path)]
    if has_errors(findings):
        problems = "; ".join(f"{f.path}: {f.message}" for f in findings if f.severity == "error")
        hint = next((f.hint for f in findings if f.severity == "error" and f.hint), "")
        raise AzclusterError(f"not written: {problems}", hint, EXIT_REFUSED)
