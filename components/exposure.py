"""What of the cluster answers on a public address, and why: `plan` shows it (pure: spec only, no pulumi).

GPU and login nodes never have public IPs. What does is listed here with the reason, so a reviewer sees
the whole surface before `up`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import ClusterSpec


@dataclass(frozen=True)
class PublicSurface:
    what: str
    why: str

    def to_json(self) -> dict[str, str]:
        return {"what": self.what, "why": self.why}


def monitoring_surfaces(
    *, public_network_access: bool, creates_workspace: bool, creates_grafana: bool
) -> list[PublicSurface]:
    """The monitoring side's public addresses (components/monitoring.py builds accordingly)."""
    surfaces: list[PublicSurface] = []
    if public_network_access:
        surfaces.append(
            PublicSurface(
                "metrics ingestion (data collection endpoint)",
                "Entra ID token and TLS required; `monitoring.public_network_access: false` sends the "
                "metrics through an Azure Monitor Private Link Scope instead",
            )
        )
    if public_network_access and creates_grafana:
        surfaces.append(
            PublicSurface(
                "Grafana",
                "Entra ID sign-in required; `monitoring.public_network_access: false` "
                "makes it private (reached from the network only)",
            )
        )
    if public_network_access and creates_workspace:
        surfaces.append(
            PublicSurface(
                "Azure Monitor workspace query endpoint",
                "Entra ID token required; `monitoring.public_network_access: false` makes it private",
            )
        )
    return surfaces


def public_surfaces(spec: ClusterSpec) -> list[PublicSurface]:
    """Everything the spec builds that has a public address."""
    surfaces: list[PublicSurface] = []
    if spec.network.bastion:
        surfaces.append(
            PublicSurface("Azure Bastion", "the way in without public IPs on the VMs; Entra ID and SSH keys")
        )
    if spec.network.nat_gateway:
        surfaces.append(
            PublicSurface("NAT gateway IP", "outbound only: nodes reach the internet, nothing in")
        )
    mon = spec.monitoring
    if mon.enabled:
        surfaces += monitoring_surfaces(
            public_network_access=mon.public_network_access,
            creates_workspace=mon.existing_workspace_id is None,
            creates_grafana=mon.existing_grafana_id is None,
        )
    return surfaces
