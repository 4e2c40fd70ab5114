"""Property test: no spec parse_cluster accepts makes a rule crash, and findings keep their shape."""

from __future__ import annotations

import base64
import copy
import ipaddress
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from azcluster.components import catalog, rules
from azcluster.components.findings import sort_findings
from azcluster.components.spec import CLUSTER_CONFIG_KEY, LOCATION_CONFIG_KEY, parse_cluster

from .cases import (
    CRG_ID,
    DSA_KEY,
    ECDSA_KEY,
    ED25519_KEY,
    ED25519_RFC4716,
    GALLERY_IMAGE,
    PRIVATE_KEY,
    RSA_1024_KEY,
    RSA_2048_KEY,
    VNET_ID,
)


def _cidr(prefixes: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return st.builds(lambda a, p: f"{ipaddress.IPv4Address(a)}/{p}", st.integers(0, 2**32 - 1), prefixes)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(max_size=max_size).filter(lambda s: not s.strip().endswith(".pub"))


CIDRS = st.one_of(
    st.sampled_from(
        ["10.42.0.0/16", "10.42.1.7/16", "bogus", "10.0.0.0", "fd00::/8", "100.64.0.0/16", "10.42.0.0/30"]
    ),
    _cidr(st.integers(12, 30)),
)
SUBNET_CIDRS = st.one_of(st.sampled_from(["10.42.0.0/20", "10.42.250.0/27", "x"]), _cidr(st.integers(16, 30)))
IMAGES = st.sampled_from(
    [
        "microsoft-dsvm:ubuntu-hpc:2204:latest",
        "microsoft-dsvm:ubuntu-hpc:2404:latest",
        "microsoft-dsvm:ubuntu-hpc:2204-rocm:latest",
        GALLERY_IMAGE,
        "Canonical:ubuntu",
    ]
)
KEYS = st.one_of(
    st.sampled_from(
        [ED25519_KEY, RSA_2048_KEY, RSA_1024_KEY, ECDSA_KEY, DSA_KEY, ED25519_RFC4716, PRIVATE_KEY]
    ),
    st.builds(
        lambda t, b: f"{t} {base64.b64encode(b).decode()}",
        st.sampled_from(sorted(rules.SSH_KEY_TYPES)),
        st.binary(max_size=80),
    ),
    _text(60),
)

POOLS = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["gpu", "train", "GPU", "p" * 40]), _text(12)),
        "size": st.one_of(st.sampled_from(sorted(catalog.gpu_sizes())), _text(30)),
        "nodes": st.one_of(st.integers(0, 20), st.integers(0, 1200)),
        "island_max_nodes": st.integers(1, 1000),
        "spot": st.booleans(),
    },
    optional={
        "image": _maybe(st.one_of(IMAGES, _text(40))),
        "capacity_reservation_group_id": _maybe(st.one_of(st.just(CRG_ID), _text(40))),
        "capacity": st.fixed_dictionaries(
            {},
            optional={
                "zones": st.lists(st.sampled_from(["1", "2", "3"]), max_size=3, unique=True),
                "stand_in_sizes": st.lists(
                    st.one_of(st.sampled_from(sorted(catalog.gpu_sizes())), _text(30)),
                    max_size=3,
                    unique=True,
                ),
                "min_nodes": _maybe(st.integers(1, 400)),
                "wait_minutes": st.integers(0, 600),
            },
        ),
    },
)

CLUSTERS = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["demo", "h100-64", "c" * 60, "Bad Name", "1x", "x-"]), _text(70)),
        "pools": st.lists(POOLS, max_size=3),
        "ssh": st.fixed_dictionaries(
            {
                "admin_username": st.one_of(
                    st.sampled_from(["azureuser", "root", "Admin", "-x", ""]), _text(70)
                ),
                "public_keys": st.lists(KEYS, max_size=3),
            }
        ),
    },
    optional={
        "zone": _maybe(st.sampled_from(["1", "2", "3"])),
        "tags": st.dictionaries(
            st.one_of(st.sampled_from(["Env", "env", "azcluster-role", "a/b"]), _text(20)),
            st.one_of(_text(20), st.just("v" * 257)),
            max_size=20,
        ),
        "resource_group": _maybe(_text(95)),
        "suppress": st.lists(st.one_of(st.sampled_from(sorted(rules.RULES)), _text(8)), max_size=4),
        "network": st.fixed_dictionaries(
            {"address_space": CIDRS, "bastion": st.booleans(), "nat_gateway": st.booleans()},
            optional={
                "existing_vnet_id": _maybe(st.one_of(st.just(VNET_ID), _text(40))),
                "subnets": st.fixed_dictionaries(
                    {}, optional={role: _maybe(SUBNET_CIDRS) for role in rules.SUBNET_ROLES}
                ),
            },
        ),
        "login": st.fixed_dictionaries(
            {"enabled": st.booleans()},
            optional={
                "size": st.one_of(st.sampled_from(sorted(catalog.general_sizes())), _text(20)),
                "image": IMAGES,
            },
        ),
        "storage": st.fixed_dictionaries(
            {},
            optional={
                "lustre": _maybe(
                    st.fixed_dictionaries(
                        {
                            "enabled": st.booleans(),
                            "sku": st.sampled_from(sorted(catalog.lustre_skus())),
                            "capacity_tib": st.integers(1, 1000),
                        },
                        optional={"import_container": _maybe(st.sampled_from(["data", "datasets", "Bad"]))},
                    )
                ),
                "blob": st.fixed_dictionaries(
                    {
                        "enabled": st.booleans(),
                        "mount": st.booleans(),
                        "containers": st.lists(
                            st.one_of(st.sampled_from(["data", "datasets"]), _text(10)), max_size=3
                        ),
                    }
                ),
            },
        ),
    },
)
LOCATIONS = st.one_of(st.sampled_from([*sorted(catalog.regions()), "East US", "nowhere"]), _text(15))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(cluster=CLUSTERS, location=LOCATIONS)
def test_check_never_raises_and_findings_keep_their_shape(cluster: dict[str, Any], location: str) -> None:
    try:
        spec = parse_cluster({LOCATION_CONFIG_KEY: location, CLUSTER_CONFIG_KEY: copy.deepcopy(cluster)})
    except ValidationError:
        assume(False)
        return
    findings = rules.check(spec)
    assert findings == sort_findings(findings)
    silenced = {s.strip().upper() for s in spec.suppress}
    for finding in findings:
        rule = rules.RULES[finding.id]
        assert finding.id not in silenced
        assert finding.severity == rule.severity
        assert finding.path == LOCATION_CONFIG_KEY or finding.path.startswith(CLUSTER_CONFIG_KEY + ".")
        assert isinstance(finding.message, str) and finding.message.strip()
        assert isinstance(finding.hint, str) and finding.hint.strip()
        assert set(finding.to_json()) == {"id", "severity", "path", "message", "hint"}
