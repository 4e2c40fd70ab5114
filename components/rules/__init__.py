"""Validation rules: what in a spec would break the deployment, found before Azure is asked.

The spec module checks only shape. These rules check what Azure, the catalogue and the cluster's own
design will refuse or quietly get wrong. Like AWS ParallelCluster's validators, each rule is one small
function registered with a stable id (AZC001...), a fixed severity and a name; its docstring says why it
matters and cites where the limit comes from. `check(spec)` runs them all; `Cluster` refuses a spec with
error findings, so `validate` and `plan` agree: every check a component makes on spec values is a rule first.

One module per domain, one registry (`registry.py`):

    region.py    AZC001-002          region and zone
    pools.py     AZC003-016          GPU pools, InfiniBand islands, Spot, capacity reservations
    images.py    AZC017-018, 055-059 images, architectures, Marketplace plans
    login.py     AZC019              the login node
    network.py   AZC020-032, 060-061 address space, subnets, reachability, private DNS zones
    storage.py   AZC033-039, 054     Managed Lustre and the blob data account
    names.py     AZC040-042          names derived from the cluster and pool names
    access.py    AZC043-048          admin user and SSH keys (sshkey.py parses keys)
    tags.py      AZC049-052          tags
    suppress.py  AZC053              the spec's own `suppress:` list
    boot.py      AZC062              each role's cloud-config within Azure's custom data limit
    slurm.py     AZC070-075          Slurm (ids AZC070-079)
    home.py      AZC085-086          the shared home (ids AZC080-089)
    elastic.py   AZC093-097          elastic pools (ids AZC090-099)
    capacity.py  AZC100-109, 160-161 capacity policy: zones, stand-in sizes, partial islands, reservations
                                     (ids AZC100-109, AZC160-169)
    team.py      AZC110-119          users and groups on every node (the `team:` section)
    monitoring.py AZC120-129, 150, 155-156  Azure Monitor workspace, Grafana, alert receivers, ingestion
                                     limits, Private Link Scope (ids AZC120-129, AZC150-159)
    rack.py      AZC130-134          GB200/GB300 NVL72 racks: whole racks, interconnect groups, GB health
                                     (ids AZC130-139: 130-134 racks and health, 135-139 the Slurm side)
    rack_slurm.py AZC135-136         the racks' Slurm side: NVLink blocks within islands, elastic islands
    accounting.py AZC140-143         the team's Slurm accounts, fair shares and GPU limits (ids AZC140-149)
    accounting_db.py AZC146-149      slurmdbd's database and slurmctld's state against a rebuilt login node
                                     (team accounting's block; AZC144-145 are accounting.py's)

Adding a rule:
1. Open the domain's module (a new domain, e.g. dashboards: create `dashboards.py` and add it to the
   import list at the bottom of this file; that import is what registers its rules).
2. Write a function that takes the `ClusterSpec` and yields `(path, message, hint)`, decorated with
   `@rule("AZC0nn", "error" | "warning" | "info", "kebab-case-name", "One-line title")`. Its docstring says
   why Azure or the cluster needs it, with the source. Build paths with `common.at("...")` /
   `common.pool_at(i, "field")`. A rule must cope with any spec `parse_cluster` accepts (a property test
   feeds it generated specs): a rule that crashes hides every other finding.
3. Choose the id: the next free one in the domain's block, or a new block of ten for a new domain.
   Next free: AZC063 (domains without a block), AZC076 (Slurm), AZC087 (home), AZC098 (elastic),
   AZC137 (the racks' Slurm side; AZC130-134 are full), AZC144 (team accounting; AZC146-149 are
   accounting_db.py's), AZC151 and AZC157 (monitoring: AZC150-154 the node side, AZC157-159 dashboards
   and access), AZC162 (capacity's second block, AZC160-169). A new domain takes the next block no one
   has taken (ten ids) and lists it above.
   Ids are stable: a retired rule's id is never reused.
4. Add a case that fires and one that stays quiet to the FIRES and QUIET tables of the domain's test,
   tests/components/rules/test_<domain>.py (a registry test fails until every rule has both there).

Rules are pure: no Azure calls, no Pulumi, only the spec and the catalogue. Paths are YAML paths relative
to the stack file's `config:`, e.g. `azcluster:cluster.pools[0].size` or `azure-native:location`.
"""

from __future__ import annotations

from ..findings import Finding
from . import (
    access,
    accounting,
    accounting_db,
    boot,
    capacity,
    elastic,
    home,
    images,
    login,
    monitoring,
    names,
    network,
    pools,
    rack,
    rack_slurm,
    region,
    slurm,
    storage,
    suppress,
    tags,
    team,
)
from .names import scale_set_names
from .network import SUBNET_ROLES, lustre_subnet_prefix
from .registry import RULES, Problem, Rule, RuleCheck, check, rule, sort_by_id
from .sshkey import SSH_KEY_TYPES, SshKeyError, SshPublicKey, parse_ssh_public_key

DOMAINS = (
    region,
    pools,
    images,
    login,
    network,
    storage,
    names,
    access,
    tags,
    suppress,
    boot,
    slurm,
    home,
    elastic,
    capacity,
    team,
    accounting,
    accounting_db,
    monitoring,
    rack,
    rack_slurm,
)
"""The domain modules; importing one registers its rules. A new domain is imported above and added here."""

sort_by_id()

__all__ = [
    "DOMAINS",
    "RULES",
    "SSH_KEY_TYPES",
    "SUBNET_ROLES",
    "Finding",
    "Problem",
    "Rule",
    "RuleCheck",
    "SshKeyError",
    "SshPublicKey",
    "check",
    "lustre_subnet_prefix",
    "parse_ssh_public_key",
    "rule",
    "scale_set_names",
]
