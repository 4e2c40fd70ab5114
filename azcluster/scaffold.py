"""`azcluster init`: write a commented stack file that validates as written.

The comments teach the stack file's keys and their allowed values, so a new user can edit it without
opening the docs. The values given on the command line are set into the parsed template and written by
ruamel's YAML emitter, which quotes them as YAML needs: a value can never add a key or break the file
(`--location $'eastus\\n  evil: 1'` is one odd string, refused as an unknown region). Before anything is
written the result goes through exactly what `validate` does, and its problems are shown as findings.
An existing stack is never overwritten without --force.

Exit codes: 2 for what the command line itself gets wrong (a name that cannot be a stack, an existing
file, a Lustre size no SKU takes, an unreadable --ssh-key), 1 when the cluster the options describe is
refused by the rules, as `validate` would refuse it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azcluster.components import catalog
from azcluster.components.findings import Finding, has_errors

from . import sshkeys
from .errors import EXIT_REFUSED, EXIT_USAGE, AzclusterError

STACK_NAME = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")
STACK_NAME_MAX = 48
"""Longer and `{name}-{pool}-ib{n}` runs into Azure's 64-character scale set names; 300 characters made
`init` fail on the file name itself."""
"""The stack name is also the cluster name, so it follows the cluster-name rule (AZC rule
cluster-name-invalid): a lower-case letter, then lower-case letters, digits and hyphens."""

NAME_TOKEN = "__STACK__"
"""Stands for the stack name in the template's comments until the name is known to be safe there."""

TEMPLATE = """\
# azcluster stack `__STACK__`: a GPU cluster on Azure. Check it with `azcluster validate __STACK__`,
# see what it builds and costs with `azcluster plan __STACK__`, then `azcluster up __STACK__`.
# Every key is described by `azcluster schema` (JSON Schema, for editor completion).
config:
  # Azure region (programmatic name, e.g. eastus, westeurope, southcentralus).
  azure-native:location: eastus
  azcluster:cluster:
    # Prefix of every resource name: lower-case letters, digits and '-'.
    name: cluster
    # Availability zone '1', '2' or '3' for zonal resources (Managed Lustre needs one). Remove for none.
    zone: "1"
    tags:
      owner: cluster
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
        size: Standard_ND96asr_v4
        nodes: 2
        # Spot VMs are cheaper but can be evicted at any time (true/false).
        spot: false
        # When Azure cannot place a whole island: zones to try in order, the smallest island worth
        # keeping, how long `up --wait-for-capacity`/`grow` keep trying (default: this zone, whole
        # islands, one try). See `azcluster plan` and the README, "When Azure has no capacity".
        # capacity: {zones: ["1", "2"], min_fraction: 0.75, wait_minutes: 60}
    login:
      # A small VM to log in to, reached through Bastion (`azcluster ssh __STACK__`).
      enabled: true
      size: Standard_D4s_v5
    storage:
{lustre}      blob:
        # A storage account for data and checkpoints (private endpoint only).
        enabled: false
    ssh:
      admin_username: azureuser
      # OpenSSH public keys: key text, or a path to a .pub file (relative to this file, ~ allowed).
      public_keys:
        - ssh-key
{elastic}{monitoring}    # Finding ids to silence (see `azcluster validate`), e.g. [AZC012].
    suppress: []
"""

LUSTRE_BLOCK = """\
      # Azure Managed Lustre. sku: AMLFS-Durable-Premium-40 | -125 | -250 | -500 (MB/s per TiB);
      # capacity_tib must be within the SKU's range and a multiple of its step (see `azcluster validate`).
      lustre:
        sku: AMLFS-Durable-Premium-250
        capacity_tib: 8
"""
ELASTIC_BLOCK = """\
    # Power idle GPU nodes off (deallocate: no VM charge) and on again when work needs them. With Slurm,
    # Slurm's power saving does it per node; without a scheduler the login node deallocates an island whose
    # GPUs all stayed idle (`azcluster start` brings it back). Remove the section for always-on nodes.
    elastic:
      # Minutes a node stays idle before it is deallocated (keep it above the ~15 min a node takes to boot).
      idle_minutes: 60
      # Minutes a started node has to boot before Slurm marks it down and requeues its job.
      resume_timeout_minutes: 30
      # InfiniBand islands per pool that are never powered off, so small jobs start at once.
      keep_warm_islands: 0
"""
MONITORING_BLOCK = """\
    # Metrics, dashboards and alerts: GPU, InfiniBand, node and Slurm metrics in Azure Monitor managed
    # Prometheus, shown by Azure Managed Grafana (`azcluster dashboard __STACK__` prints its address).
    # `azcluster plan` shows what it costs and what of it is public. Remove the section for none.
    monitoring:
      enabled: true
      # Seconds between two scrapes of each node (ingestion is billed per sample: 15 costs twice 30).
      scrape_interval_seconds: 30
      # Where alerts go (an Azure Monitor action group); none: they show in Grafana and the portal only.
      # alert_emails: [hpc-oncall@example.com]
      # A hub team's workspace and Grafana instead of new ones (`az monitor account show --query id`,
      # `az grafana show --query id`):
      # existing_workspace_id: /subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.Monitor/...
      # existing_grafana_id: /subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.Dashboard/...
"""
NO_MONITORING = (
    "    # monitoring: {enabled: true}   # metrics, dashboards and alerts (Azure Monitor, Managed Grafana)\n"
)
NO_ELASTIC = "    # elastic: {idle_minutes: 60}   # power idle GPU nodes off and on by themselves\n"
NO_LUSTRE = "      # lustre: {sku: AMLFS-Durable-Premium-250, capacity_tib: 8}   # Azure Managed Lustre\n"

OPTION_OF = {
    "azure-native:location": "--location",
    "azcluster:cluster.name": "NAME",
    "azcluster:cluster.pools[0].size": "--size",
    "azcluster:cluster.pools[0].nodes": "--nodes",
    "azcluster:cluster.storage.lustre": "--lustre-tib",
    "azcluster:cluster.ssh.public_keys": "--ssh-key",
}
"""Which command-line value a finding's YAML path came from, so a refusal names what to change."""


@dataclass(frozen=True)
class ScaffoldResult:
    path: Path
    key: sshkeys.KeyChoice


class NotWritten(AzclusterError):
    """The options make a cluster the rules refuse: the findings, located in the file not written."""

    def __init__(self, path: Path, findings: list[Finding]) -> None:
        errors = [f for f in findings if f.severity == "error"]
        options = sorted({option for f in errors if (option := option_for(f.path))})
        change = f"change {', '.join(options)}" if options else "change the options"
        super().__init__(
            f"{path} not written: {len(errors)} error finding{'s' if len(errors) != 1 else ''}",
            f"{change} and run `azcluster init` again (the findings above say why)",
            EXIT_REFUSED,
        )
        self.path = path
        self.findings = findings


def option_for(yaml_path: str) -> str | None:
    """The option behind a finding's YAML path (or one of its parents), if the command line set it."""
    for path, option in OPTION_OF.items():
        if yaml_path == path or yaml_path.startswith((f"{path}.", f"{path}[")):
            return option
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


def check_name(name: str) -> None:
    """A stack name that cannot be a file name and a cluster name is a usage error, before anything."""
    if len(name) > STACK_NAME_MAX:
        raise AzclusterError(
            f"stack name {name[:20]!r}... has {len(name)} characters, more than {STACK_NAME_MAX}",
            "every Azure resource name starts with it (a scale set name is at most 64 characters); "
            "use a short name, e.g. the team or project",
            EXIT_USAGE,
        )
    if STACK_NAME.fullmatch(name):
        return
    suggestion = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", name.lower())).strip("-")
    if not suggestion or not suggestion[0].isalpha():
        suggestion = f"c-{suggestion}".rstrip("-")
    raise AzclusterError(
        f"stack name {name!r} is not a lower-case letter followed by lower-case letters, digits and "
        "hyphens (not ending in a hyphen); it names the stack file and every Azure resource",
        f"use e.g. {suggestion!r}",
        EXIT_USAGE,
    )


def render_stack(
    name: str,
    size: str,
    nodes: int,
    location: str,
    lustre_tib: int,
    key: str,
    elastic: bool = True,
    monitoring: bool = True,
) -> str:
    """The stack file's text: the commented template with the values set and emitted as YAML."""
    yaml = _yaml()
    text = TEMPLATE.replace("{lustre}", LUSTRE_BLOCK if lustre_tib else NO_LUSTRE)
    text = text.replace("{elastic}", ELASTIC_BLOCK if elastic else NO_ELASTIC)
    text = text.replace("{monitoring}", MONITORING_BLOCK if monitoring else NO_MONITORING)
    document = yaml.load(text)
    config = document["config"]
    config["azure-native:location"] = location
    cluster = config["azcluster:cluster"]
    cluster["name"] = name
    cluster["tags"]["owner"] = name
    pool = cluster["pools"][0]
    pool["size"] = size
    pool["nodes"] = nodes
    if lustre_tib:
        cluster["storage"]["lustre"]["sku"] = lustre_sku_for(lustre_tib)
        cluster["storage"]["lustre"]["capacity_tib"] = lustre_tib
    cluster["ssh"]["public_keys"][0] = key
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # one value per line: a long key stays on its line
    return yaml


def write_stack(
    path: Path,
    name: str,
    size: str,
    nodes: int,
    location: str,
    lustre_tib: int,
    force: bool = False,
    ssh_key: Path | None = None,
    elastic: bool = True,
    monitoring: bool = True,
) -> ScaffoldResult:
    check_name(name)
    if path.exists() and not force:
        raise AzclusterError(
            f"{path} already exists", "pick another name, or pass --force to overwrite it", EXIT_USAGE
        )
    if lustre_tib:
        lustre_sku_for(lustre_tib)  # exit 2 before anything else
    pair = None
    if ssh_key is not None:
        key = sshkeys.KeyChoice(sshkeys.read_public_key(ssh_key.expanduser()), ssh_key.expanduser())
    elif (found := sshkeys.existing_key()) is not None:
        key = found
    else:  # made now, saved only once the stack is known to be good
        pair = sshkeys.new_key_pair()
        key = sshkeys.KeyChoice(pair.public_text, Path(f"{sshkeys.azcluster_key()}.pub"), created=True)
    text = render_stack(name, size, nodes, location, lustre_tib, key.text, elastic, monitoring)
    _refuse_invalid(text, path, name)
    if pair is not None:
        key = sshkeys.save(pair, sshkeys.azcluster_key())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace(NAME_TOKEN, name), encoding="utf-8")
    return ScaffoldResult(path, key)


def _refuse_invalid(text: str, path: Path, name: str) -> None:
    """Validate before writing, with `validate`'s own code, so `init` never leaves a stack that fails."""
    from ruamel.yaml import YAML

    from . import stackfile

    loaded = stackfile.parse_document(name, path, YAML(typ="rt").load(text))
    findings = stackfile.validate(loaded)
    if has_errors(findings):
        raise NotWritten(path, findings)
