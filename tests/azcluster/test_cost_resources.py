"""What a cluster costs besides its VMs: the catalogue (prices.yaml), the arithmetic per resource, the
plan graph against the breakdown, `plan --json`'s `cost_breakdown` and the human cost table.

Expected figures are computed from the catalogue's own numbers, never typed in: a price change in
prices.yaml changes both sides. Everything runs offline (plans run under Pulumi mocks).
"""

from __future__ import annotations

import io
import json
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from azcluster import cost, plan
from azcluster.components import catalog
from azcluster.components.spec import parse_cluster
from tests.clirunner import run_cli

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
STACKS = Path(__file__).resolve().parents[2] / "stacks"
H100 = "Standard_ND96isr_H100_v5"
LUSTRE = "azure-native:storagecache:AmlFilesystem"
SHARE = "azure-native:storage:FileShare"
ACCOUNT = "azure-native:storage:StorageAccount"
BASTION = "azure-native:network:BastionHost"
NAT = "azure-native:network:NatGateway"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
ENDPOINT = "azure-native:network:PrivateEndpoint"
ZONE = "azure-native:privatedns:PrivateZone"
DISK = "azure-native:compute:Disk"
HUB_VNET = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/hub/providers/"
    "Microsoft.Network/virtualNetworks/hub"
)
HUB_CRG = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/hub/providers/"
    "Microsoft.Compute/capacityReservationGroups/held"
)
HUB_BLOB_ZONE = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/hub/providers/"
    "Microsoft.Network/privateDnsZones/privatelink.blob.core.windows.net"
)


def spec_of(cluster: dict, location: str = "eastus"):
    base = {"name": "c", "pools": [{"name": "gpu", "size": H100, "nodes": 2}], "ssh": {"public_keys": [KEY]}}
    return parse_cluster({"azure-native:location": location, "azcluster:cluster": {**base, **cluster}})


def price(kind: str, variant: str | None = None) -> catalog.ResourcePrice:
    return catalog.resource_prices()[(kind, variant)]


def lines(summary, kind: str) -> list[cost.ResourceCost]:
    """The priced resources of one kind in a Summary or a ClusterStatus (both hold `resources`)."""
    return [item for item in summary.resources if item.item.kind == kind]


def only(summary, kind: str) -> cost.ResourceCost:
    found = lines(summary, kind)
    assert len(found) == 1, [item.item.label for item in found]
    return found[0]


# --- the catalogue ---------------------------------------------------------------------------------------


def test_every_catalogue_kind_has_a_price_function_and_no_kind_is_both_priced_and_free():
    priced = {kind for kind, _ in catalog.resource_prices()}
    assert priced == set(cost.PRICERS), "prices.yaml kinds and cost.PRICERS must name the same types"
    free, compute = set(catalog.free_resource_types()), set(catalog.compute_resource_types())
    assert not priced & free and not priced & compute and not free & compute
    assert all(reason.strip() for reason in catalog.free_resource_types().values())


def test_catalogue_rows_are_dated_sourced_and_in_a_unit_their_price_function_handles():
    for (kind, _variant), row in catalog.resource_prices().items():
        assert row.source.startswith("https://"), kind
        assert row.date[:4].isdigit() and row.region, kind
        if row.unit in ("hour", "month", "GiB-month", "TiB-month"):
            assert row.rates and all(rate >= 0 for rate in row.rates.values()), kind
        else:  # usage-only and included rows have nothing fixed to multiply
            assert not row.rates, kind
        if row.unit in ("GiB-month", "TiB-month"):
            assert row.quantity_input, f"{kind}: a per-capacity price must say which input holds the capacity"
        if row.estimate:  # an estimate says how to check it
            assert row.verify and row.note, kind


def test_the_month_is_azures_calculator_month_in_the_code_and_the_catalogue():
    assert cost.HOURS_PER_MONTH == catalog.hours_per_month() == 730


def test_the_shared_homes_price_is_one_fact_in_two_files():
    """storage.yaml compares Azure Files with NetApp at the same LRS price the estimate uses."""
    assert catalog.home_default().price.usd_per_gib_month == price(SHARE).rate("Premium_LRS")


def test_every_lustre_sku_the_spec_accepts_has_a_rate():
    skus = set(catalog.lustre_skus())
    assert skus == set(price(LUSTRE).rates)


# --- the arithmetic, resource by resource ----------------------------------------------------------------


@pytest.mark.parametrize("sku", sorted(catalog.lustre_skus()))
def test_lustre_is_its_capacity_times_the_tier_rate_per_tib_month(sku):
    tib = catalog.lustre_skus()[sku].min_tib * 2
    summary = cost.summarize(spec_of({"storage": {"lustre": {"sku": sku, "capacity_tib": tib}}}))
    line = only(summary, LUSTRE)
    rate = price(LUSTRE).rates[sku]
    assert line.usd_per_hour == pytest.approx(rate * tib / 730)
    assert line.usd_per_month == pytest.approx(rate * tib, abs=0.01)
    assert (line.item.sku, line.item.quantity, line.rate) == (sku, tib, rate)


@pytest.mark.parametrize("redundancy", ["LRS", "ZRS"])
def test_the_shared_home_is_its_provisioned_gib_times_the_premium_rate(redundancy):
    summary = cost.summarize(spec_of({"storage": {"home": {"size_gib": 2048, "redundancy": redundancy}}}))
    share = only(summary, SHARE)
    rate = price(SHARE).rates[f"Premium_{redundancy}"]
    assert share.usd_per_hour == pytest.approx(rate * 2048 / 730)
    account = [item for item in lines(summary, ACCOUNT) if item.item.variant == "FileStorage"]
    assert len(account) == 1 and account[0].usd_per_hour == 0.0  # billed through its share
    assert [item.item.count for item in lines(summary, ENDPOINT)] == [1]


def test_bastion_nat_and_their_public_ips_are_hourly_rates():
    summary = cost.summarize(spec_of({}))
    assert only(summary, BASTION).usd_per_hour == pytest.approx(price(BASTION).rates[cost.BASTION_SKU])
    nat = only(summary, NAT)
    assert nat.usd_per_hour == pytest.approx(price(NAT).rates["Standard"])
    assert [m.meter for m in nat.price.usage] == ["data processed"]  # named, not added
    ips = lines(summary, PUBLIC_IP)
    assert sorted(item.item.role for item in ips) == ["bastion", "nat"]
    assert sum(item.usd_per_hour for item in ips) == pytest.approx(2 * price(PUBLIC_IP).rates["Standard"])


def test_without_bastion_and_nat_there_is_no_line_for_them_or_their_ips():
    summary = cost.summarize(spec_of({"network": {"bastion": False, "nat_gateway": False}}))
    assert not lines(summary, BASTION) and not lines(summary, NAT) and not lines(summary, PUBLIC_IP)


def test_private_endpoints_one_per_storage_account_at_the_hourly_rate():
    both = cost.summarize(spec_of({"storage": {"blob": {"enabled": True}}}))
    assert only(both, ENDPOINT).item.count == 2
    assert only(both, ENDPOINT).usd_per_hour == pytest.approx(2 * price(ENDPOINT).rate(None))
    none = cost.summarize(spec_of({"storage": {"home": {"enabled": False}}}))
    assert not lines(none, ENDPOINT)


@pytest.mark.parametrize(
    ("network", "storage", "zones"),
    [
        ({}, {}, 2),  # the cluster's zone + privatelink.file for the home
        ({}, {"blob": {"enabled": True}}, 3),  # + privatelink.blob
        ({"dns_zones": {"blob": HUB_BLOB_ZONE}}, {"blob": {"enabled": True}}, 2),  # the hub's blob zone
        ({"existing_vnet_id": HUB_VNET}, {"blob": {"enabled": True}}, 1),  # a hub network has its own
        ({}, {"home": {"enabled": False}}, 1),
    ],
)
def test_private_dns_zones_are_priced_per_zone_month(network, storage, zones):
    summary = cost.summarize(spec_of({"network": network, "storage": storage}))
    line = only(summary, ZONE)
    assert line.item.count == zones
    assert line.usd_per_hour == pytest.approx(zones * price(ZONE).rate(None) / 730)


def test_pricing_decides_dns_zones_as_the_network_component_does():
    """cost restates components/network.py `private_dns_zone` to stay free of pulumi: hold them together."""
    from azcluster.components.network import private_dns_zone

    for network in (
        {},
        {"existing_vnet_id": HUB_VNET},
        {"dns_zones": {"blob": "create", "file": HUB_BLOB_ZONE}},
    ):
        spec = spec_of({"network": network})
        for kind in ("blob", "file"):
            for needed in (True, False):
                assert cost._creates_dns_zone(spec, kind, needed) == private_dns_zone(spec, kind, needed)[1]


def test_os_disks_are_billed_per_month_at_the_tier_their_size_rounds_up_to():
    disks = price(DISK, "os")
    p15 = disks.tiers["P15"]
    spec = spec_of(
        {
            "pools": [
                {"name": "a", "size": H100, "nodes": 3, "os_disk_gb": p15},
                {"name": "b", "size": H100, "nodes": 2, "os_disk_gb": p15 + 1},
            ],
            "login": {"enabled": False},
        }
    )
    summary = cost.summarize(spec)
    by_label = {item.item.label.split(":")[0]: item for item in lines(summary, DISK)}
    assert set(by_label) == {"OS disks, pool a", "OS disks, pool b"}  # no login node, no login disk
    a, b = by_label["OS disks, pool a"], by_label["OS disks, pool b"]
    assert (a.item.sku, a.item.count, b.item.sku, b.item.count) == ("P15", 3, "P20", 2)
    assert a.usd_per_hour == pytest.approx(3 * disks.rates["P15"] / 730)
    assert b.usd_per_hour == pytest.approx(2 * disks.rates["P20"] / 730)
    assert cost.rate_text(a) == f"{cost.money(disks.rates['P15'])}/month each"
    with_login = cost.summarize(spec_of({}))
    login = [item for item in lines(with_login, DISK) if item.item.label.startswith("OS disks, login")]
    assert [item.item.sku for item in login] == [disks.tier_for(cost.LOGIN_OS_DISK_GB)]


def test_blob_is_usage_based_shown_as_a_rate_not_an_amount():
    summary = cost.summarize(spec_of({"storage": {"blob": {"enabled": True}}}))
    blob = [item for item in lines(summary, ACCOUNT) if item.item.variant == "StorageV2"]
    assert len(blob) == 1 and blob[0].usd_per_hour == 0.0 and blob[0].rate is None
    stored = price(ACCOUNT, "StorageV2").usage[0]
    assert stored.per == "GB-month" and stored.usd is not None
    assert cost.rate_text(blob[0]) == "usage-based only"
    assert f"{cost.money(stored.usd)}/GB-month" in cost.usage_text(blob[0])


def test_total_is_compute_plus_the_other_resources_and_a_missing_price_is_named():
    spec = spec_of({"storage": {"lustre": {"sku": "AMLFS-Durable-Premium-250", "capacity_tib": 8}}})
    summary = cost.summarize(spec)
    assert summary.resources_usd_per_hour == pytest.approx(
        sum(item.usd_per_hour for item in summary.resources), abs=0.005
    )
    assert summary.cost_per_hour_usd == pytest.approx(
        summary.compute_usd_per_hour + summary.resources_usd_per_hour
    )
    # A row the catalogue cannot price is left out of the sum and said so, not priced at zero.
    item = cost.Billable(BASTION, "bastion", "Bastion Premium2", sku="Premium2")
    assert cost.PRICERS[BASTION](item, price(BASTION)) is None


RESERVATION = "azure-native:compute:CapacityReservation"
NC_A100 = "Standard_NC96ads_A100_v4"


def test_a_created_reservation_bills_the_reserved_vms_at_their_rate_whether_used_or_not():
    held = {"name": "held", "size": NC_A100, "nodes": 3, "capacity": {"reservation": {"create": True}}}
    summary = cost.summarize(spec_of({"pools": [held]}))
    line = only(summary, RESERVATION)
    rate = catalog.find_size(NC_A100).price.usd_per_hour
    assert (line.item.sku, line.item.quantity, line.rate) == (NC_A100, 3, rate)
    # The pool's running nodes are the reservation's charge: the compute line, nothing on top of it.
    assert line.usd_per_hour == 0.0
    pool_line = [price_line for price_line in summary.prices if price_line.size == NC_A100]
    assert [price_line.count for price_line in pool_line] == [3]
    assert summary.cost_per_hour_usd == pytest.approx(
        summary.compute_usd_per_hour + summary.resources_usd_per_hour
    )
    assert "whether used or not" in line.item.label and "`down` deletes it" in line.item.label
    assert (
        cost.rate_text(line)
        == f"{cost.money(rate)}/hour per reserved VM (3 reserved: {cost.money(3 * rate)}/hour, used or not)"
    )


def test_an_existing_group_is_not_azclusters_to_bill_and_no_reservation_bills_nothing():
    given = {"name": "held", "size": NC_A100, "nodes": 3, "capacity": {"reservation": {"group_id": HUB_CRG}}}
    assert not lines(cost.summarize(spec_of({"pools": [given]})), RESERVATION)
    assert not lines(cost.summarize(spec_of({})), RESERVATION)


def test_an_idle_elastic_pool_still_pays_for_its_reservation():
    def idle(reservation: dict | None) -> float:
        pool = {"name": "held", "size": NC_A100, "nodes": 2}
        if reservation:
            pool["capacity"] = {"reservation": reservation}
        spec = spec_of({"pools": [pool], "scheduler": "slurm", "elastic": {"enabled": True}})
        summary = cost.summarize(spec)
        assert summary.elastic is not None
        return summary.elastic.all_idle_usd_per_hour

    rate = catalog.find_size(NC_A100).price.usd_per_hour
    assert idle({"create": True}) == pytest.approx(idle(None) + 2 * rate, abs=0.01)


# --- the plan graph against the breakdown ----------------------------------------------------------------

VARIANT = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: variant
    zone: "2"
    network:
      bastion: false
      nat_gateway: false
      dns_zones:
        blob: {blob_zone}
    pools:
      - name: gpu
        size: Standard_ND96asr_v4
        nodes: 3
      - name: small
        size: Standard_NC80adis_H100_v5
        nodes: 2
      - name: held
        size: Standard_NC96ads_A100_v4
        nodes: 2
        capacity:
          reservation:
            create: true
    storage:
      lustre:
        sku: AMLFS-Durable-Premium-40
        capacity_tib: 96
      blob:
        enabled: true
      home:
        size_gib: 4096
        redundancy: ZRS
    monitoring:
      enabled: true
      public_network_access: false
      alert_emails: [hpc-oncall@example.com]
    slurm:
      accounting:
        enabled: true
        database: mysql
        mysql:
          storage_gb: 64
    ssh:
      public_keys: ["{key}"]
"""


def _plans(tmp_path_factory) -> list[dict]:
    variant = tmp_path_factory.mktemp("stacks") / "Pulumi.variant.yaml"
    variant.write_text(textwrap.dedent(VARIANT).format(blob_zone=HUB_BLOB_ZONE, key=KEY), encoding="utf-8")
    documents = []
    for stack in (STACKS / "Pulumi.example.yaml", STACKS / "Pulumi.h100-64.yaml", variant):
        result = run_cli("plan", str(stack), "--json")
        assert result.exit_code == 0, result.stderr
        documents.append(json.loads(result.stdout))
    return documents


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    return _plans(tmp_path_factory)


def _graph_key(resource: dict) -> tuple:
    """What the graph says about a priced resource: kind, variant (a StorageAccount's kind), SKU, quantity."""
    kind, inputs = resource["type"], resource["inputs"]
    variant = inputs.get("kind") if kind == ACCOUNT else None
    row = catalog.resource_prices()[(kind, variant)]
    sku = (inputs.get("sku") or {}).get("name")
    quantity: object = None
    if row.quantity_input:
        quantity = inputs
        for key in row.quantity_input.split("."):  # dotted for a nested input: sku.capacity
            quantity = quantity.get(key) if isinstance(quantity, dict) else None
    return kind, variant, sku, quantity


def _breakdown_keys(document: dict, kinds: set[str], graph_has_sku: set[str]) -> Counter:
    keys: Counter = Counter()
    for item in document["summary"]["cost_breakdown"]["resources"]:
        if item["kind"] not in kinds:
            continue
        sku = item["sku"] if item["kind"] in graph_has_sku else None
        keys[(item["kind"], item["variant"], sku, item["quantity"])] += item["count"]
    return keys


def test_every_resource_type_in_a_plan_is_priced_free_or_compute(plans):
    known = {kind for kind, _ in catalog.resource_prices()}
    known |= set(catalog.free_resource_types()) | set(catalog.compute_resource_types())
    for document in plans:
        types = {resource["type"] for resource in document["resources"]}
        azure = {typ for typ in types if typ.startswith("azure-native:")}
        missing = sorted(azure - known)
        assert not missing, (
            f"{document['stack']}: resource types in neither prices.yaml `resources`, `free` nor "
            f"`compute`: {missing} (say what each costs, or why nothing)"
        )


def test_every_priced_resource_in_a_plan_is_in_its_breakdown(plans):
    """Walk each plan's graph: every resource the catalogue says costs money appears in the breakdown with
    the SKU and quantity the graph has, as many times as the graph has it (and nothing more). OS disks come
    with the VMs (no resource of their own): the next test."""
    priced = {kind for (kind, _), row in catalog.resource_prices().items() if not row.part_of}
    seen: set[str] = set()
    for document in plans:
        resources = [r for r in document["resources"] if r["type"] in priced]
        graph = Counter(_graph_key(r) for r in resources)
        has_sku = {r["type"] for r in resources if (r["inputs"].get("sku") or {}).get("name")}
        breakdown = _breakdown_keys(document, priced, has_sku)
        assert graph == breakdown, f"{document['stack']}: graph {dict(graph)} != breakdown {dict(breakdown)}"
        seen |= {r["type"] for r in resources}
    assert seen == priced  # these plans exercise every priced type at least once


def test_every_vms_os_disk_in_a_plan_is_in_its_breakdown_at_its_tier(plans):
    disks = price(DISK, "os")
    assert set(disks.part_of) == set(catalog.compute_resource_types())
    for document in plans:
        graph: Counter = Counter()
        for resource in document["resources"]:
            inputs = resource["inputs"]
            if resource["type"] == "azure-native:compute:VirtualMachineScaleSet":
                os_disk, count = (
                    inputs["virtualMachineProfile"]["storageProfile"]["osDisk"],
                    inputs["sku"]["capacity"],
                )
            elif resource["type"] == "azure-native:compute:VirtualMachine":
                os_disk, count = inputs["storageProfile"]["osDisk"], 1
            else:
                continue
            assert os_disk["managedDisk"]["storageAccountType"] == "Premium_LRS"  # what the row prices
            graph[(disks.tier_for(os_disk["diskSizeGB"]), os_disk["diskSizeGB"])] += count
        priced: Counter = Counter()
        for item in document["summary"]["cost_breakdown"]["resources"]:
            if item["kind"] == DISK:
                priced[(item["sku"], item["quantity"])] += item["count"]
        assert graph == priced, document["stack"]


def test_the_vms_in_a_plan_are_the_compute_lines(plans):
    for document in plans:
        graph: Counter = Counter()
        for resource in document["resources"]:
            inputs = resource["inputs"]
            if resource["type"] == "azure-native:compute:VirtualMachineScaleSet":
                graph[inputs["sku"]["name"]] += inputs["sku"]["capacity"]
            elif resource["type"] == "azure-native:compute:VirtualMachine":
                graph[inputs["hardwareProfile"]["vmSize"]] += 1
        priced: Counter = Counter()
        for line in document["summary"]["prices"]:
            priced[line["size"]] += line["count"]
        assert graph == priced, document["stack"]


def test_the_variant_plan_prices_what_it_changed(plans):
    variant = next(document for document in plans if document["stack"] == "variant")
    items = {
        (item["kind"], item["variant"]): item for item in variant["summary"]["cost_breakdown"]["resources"]
    }
    lustre = items[(LUSTRE, None)]
    assert (lustre["sku"], lustre["quantity"]) == ("AMLFS-Durable-Premium-40", 96)
    assert lustre["usd_per_hour"] == pytest.approx(
        price(LUSTRE).rates["AMLFS-Durable-Premium-40"] * 96 / 730, abs=1e-4
    )
    assert items[(SHARE, None)]["sku"] == "Premium_ZRS"
    assert (BASTION, None) not in items and (NAT, None) not in items and (PUBLIC_IP, None) not in items
    zones = [item for item in variant["summary"]["cost_breakdown"]["resources"] if item["kind"] == ZONE]
    # the cluster's and the home's; blob uses the hub's zone
    mine = [zone for zone in zones if "monitoring" not in zone["label"] and "accounting" not in zone["label"]]
    assert sum(zone["count"] for zone in mine) == 2
    # the accounting database: its size per hour plus 64 GiB of storage, its endpoint and its zone
    server = items[("azure-native:dbformysql:Server", None)]
    rates = price("azure-native:dbformysql:Server").rates
    assert (server["sku"], server["quantity"]) == ("Standard_B1ms", 64)
    assert server["usd_per_hour"] == pytest.approx(
        rates["Standard_B1ms"] + rates["storage_gib_month"] * 64 / 730, abs=1e-4
    )
    assert [zone["count"] for zone in zones if "accounting" in zone["label"]] == [1]
    # the workspace's, Grafana's and the Private Link Scope's (metrics ingestion)
    assert sum(zone["count"] for zone in zones if "monitoring" in zone["label"]) == 3


# --- JSON shape and the human table ----------------------------------------------------------------------

RESOURCE_ITEM_KEYS = {
    "kind", "variant", "role", "label", "count", "sku", "quantity", "unit", "rate_usd", "usd_per_hour",
    "usd_per_month", "usage_based", "region", "date", "confidence", "estimate", "source",
}  # fmt: skip


def test_plan_json_summary_has_a_cost_breakdown_that_adds_up(plans):
    for document in plans:
        summary = document["summary"]
        breakdown = summary["cost_breakdown"]
        assert set(breakdown) == {
            "compute_usd_per_hour",
            "resources_usd_per_hour",
            "total_usd_per_hour",
            "resources",
        }
        assert breakdown["total_usd_per_hour"] == summary["cost_per_hour_usd"]
        assert summary["cost_per_hour_usd"] == pytest.approx(
            breakdown["compute_usd_per_hour"] + breakdown["resources_usd_per_hour"]
        )
        assert breakdown["compute_usd_per_hour"] == pytest.approx(
            sum(line["count"] * line["usd_per_hour"] for line in summary["prices"]), abs=0.01
        )
        assert breakdown["resources_usd_per_hour"] == pytest.approx(
            sum(item["usd_per_hour"] for item in breakdown["resources"]), abs=0.01
        )
        for item in breakdown["resources"]:
            assert set(item) == RESOURCE_ITEM_KEYS
            assert all(set(meter) == {"meter", "usd", "per"} for meter in item["usage_based"])
            assert item["usd_per_month"] == pytest.approx(item["usd_per_hour"] * 730, abs=0.05)


def _render(renderable) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=240, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_the_human_cost_table_keeps_compute_apart_from_the_rest():
    spec = spec_of(
        {
            "login": {"size": "Standard_D2s_v5"},
            "storage": {
                "lustre": {"sku": "AMLFS-Durable-Premium-500", "capacity_tib": 16},
                "blob": {"enabled": True},
            },
        }
    )
    summary = cost.summarize(spec)
    text = _render(plan.cost_table(summary))
    compute_at, others_at, total_at = (
        text.index("compute (VMs"),
        text.index("other resources (billed"),
        text.index("total"),
    )
    pool_at, lustre_at = (
        text.index(f"pool gpu: 2 x {H100}"),
        text.index("Managed Lustre AMLFS-Durable-Premium-500"),
    )
    assert compute_at < pool_at < text.index("login: 1 x Standard_D2s_v5") < others_at < lustre_at
    assert (
        text.index("compute total") < others_at < text.index("other resources total") < text.rindex("total")
    )
    assert total_at < text.rindex("total")
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 4}
    assert f"{summary.compute_usd_per_hour:,.2f}" in rows["compute total"]
    assert f"{summary.resources_usd_per_hour:,.2f}" in rows["other resources total"]
    assert f"{summary.cost_per_hour_usd:,.2f}" in rows["total"]
    nat = next(line for label, line in rows.items() if label.startswith("NAT gateway"))
    assert "data processed $0.045/GB" in nat and "(estimate)" in nat
    blob = next(line for label, line in rows.items() if label.startswith("blob data account"))
    assert "usage-based only" in blob
    assert not any(label.startswith("shared home account") for label in rows)  # billed through its share


def test_plan_prints_the_cost_table_and_no_longer_says_vms_only():
    result = run_cli("plan", str(STACKS / "Pulumi.h100-64.yaml"), env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.stderr
    assert "VMs only" not in result.stdout
    assert "other resources" in result.stdout and "Managed Lustre AMLFS-Durable-Premium-500" in result.stdout
    assert "usage-based charges" in result.stdout


# --- status: the running VMs, and apart from them what bills whatever the nodes do -----------------------


def test_status_prices_the_other_resources_apart_from_the_running_vms(arm):
    from azcluster import render
    from azcluster.ops.status import cluster_status
    from azcluster.ops.status_view import print_status
    from tests.azcluster import demo

    sets = demo.add_to(arm.fake)
    for scale_set in sets:  # every GPU node deallocated: compute is the login node only
        for instance in scale_set.instances:
            instance.power = "deallocated"
    spec = demo.spec(storage={"lustre": {"sku": "AMLFS-Durable-Premium-250", "capacity_tib": 8}})
    status = cluster_status(spec, arm.context(), "demo", diagnose=False, slurm=False)
    expected = cost.price_resources(spec)[0]
    assert [item.item for item in status.resources] == [item.item for item in expected]
    login = catalog.general_sizes()[spec.login.size].price.usd_per_hour
    assert status.cost_per_hour() == pytest.approx(login, abs=0.01)
    lustre = only(status, LUSTRE)
    assert lustre.usd_per_hour == pytest.approx(price(LUSTRE).rates["AMLFS-Durable-Premium-250"] * 8 / 730)

    document = status.to_json()
    breakdown = document["cost_breakdown"]
    assert breakdown["compute_usd_per_hour"] == status.cost_per_hour()
    assert breakdown["resources_usd_per_hour"] == pytest.approx(
        sum(item.usd_per_hour for item in expected), abs=0.01
    )
    assert (
        document["cost_per_hour_usd"]
        == breakdown["total_usd_per_hour"]
        == pytest.approx(breakdown["compute_usd_per_hour"] + breakdown["resources_usd_per_hour"])
    )
    assert all(set(item) == RESOURCE_ITEM_KEYS for item in breakdown["resources"])
    assert "usage-based charges" in document["cost_basis"]

    with render.console.capture() as console, render.stdout.capture() as stdout:
        print_status(status)
    text = console.get() + stdout.get()
    assert f"running now: ${status.total_cost_per_hour():,.2f}/h" in text
    assert f"compute ${status.cost_per_hour():,.2f}/h" in text
    assert f"other resources ${status.resources_cost_per_hour():,.2f}/h" in text
    assert (
        f"Managed Lustre AMLFS-Durable-Premium-250, 8 TiB (estimate): {cost.money(lustre.usd_per_hour)}/h"
        in text
    )
    nat = only(status, NAT)
    assert f"NAT gateway (estimate): {cost.money(nat.usd_per_hour)}/h; by use: {cost.usage_text(nat)}" in text
    assert f"{cost.money(price(NAT).rates['Standard'])}/h" in text
    assert "shared home account" not in text  # billed through its share


def test_status_of_a_cluster_that_is_not_there_prices_nothing(arm):
    from azcluster.ops.status import cluster_status
    from tests.azcluster import demo

    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False, slurm=False)
    assert not status.found and status.resources == []
    assert status.to_json()["cost_per_hour_usd"] == 0.0


# --- monitoring ------------------------------------------------------------------------------------------

GRAFANA = "azure-native:dashboard:Grafana"
WORKSPACE = "azure-native:monitor:AzureMonitorWorkspace"


def test_monitoring_off_adds_no_line():
    summary = cost.summarize(spec_of({}))
    assert not lines(summary, GRAFANA) and not lines(summary, WORKSPACE)


def test_grafana_is_an_hourly_rate_and_the_workspace_usage_only():
    summary = cost.summarize(spec_of({"monitoring": {"enabled": True}}))
    grafana, workspace = only(summary, GRAFANA), only(summary, WORKSPACE)
    assert grafana.usd_per_hour == pytest.approx(price(GRAFANA).rate("Standard"))
    assert grafana.to_json()["usage_based"][0]["per"] == "user-month"
    assert workspace.usd_per_hour == 0.0
    assert workspace.to_json()["usage_based"][0]["per"] == "10 million samples"
    assert grafana.price.estimate and workspace.price.estimate  # not verified against the retail API


def test_a_hub_workspace_and_grafana_cost_the_cluster_nothing():
    hub = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/hub/providers/"
    summary = cost.summarize(
        spec_of(
            {
                "monitoring": {
                    "enabled": True,
                    "public_network_access": False,
                    "existing_workspace_id": hub + "Microsoft.Monitor/accounts/hub-metrics",
                    "existing_grafana_id": hub + "Microsoft.Dashboard/grafana/hub-grafana",
                    "existing_private_link_scope_id": hub + "Microsoft.Insights/privateLinkScopes/hub-ampls",
                }
            }
        )
    )
    assert not lines(summary, GRAFANA) and not lines(summary, WORKSPACE)
    assert not [item for item in summary.resources if "monitoring" in item.item.label]


def test_private_monitoring_adds_three_endpoints_and_three_zones():
    """The workspace's, Grafana's and the Private Link Scope's (private ingestion); joining a hub's scope
    adds neither an endpoint nor a zone for ingestion."""
    public = cost.summarize(spec_of({"monitoring": {"enabled": True}}))
    private = cost.summarize(spec_of({"monitoring": {"enabled": True, "public_network_access": False}}))
    hub_scope = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/hub/providers/"
        "Microsoft.Insights/privateLinkScopes/hub-ampls"
    )
    joined = cost.summarize(
        spec_of(
            {
                "monitoring": {
                    "enabled": True,
                    "public_network_access": False,
                    "existing_private_link_scope_id": hub_scope,
                }
            }
        )
    )

    def count(summary, kind):
        return sum(item.item.count for item in lines(summary, kind))

    assert count(private, ENDPOINT) == count(public, ENDPOINT) + 3
    assert count(private, ZONE) == count(public, ZONE) + 3
    assert count(joined, ENDPOINT) == count(public, ENDPOINT) + 2
    assert count(joined, ZONE) == count(public, ZONE) + 2
