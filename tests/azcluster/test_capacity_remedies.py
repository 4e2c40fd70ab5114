"""Every capacity refusal explained (remedies.explain): what happened, what azcluster did, what the user can
do, with the exact numbers a support request needs."""

from __future__ import annotations

import pytest

from azcluster import remedies
from tests.fakes.capacity import ALLOCATION_MESSAGES, sku_not_available_message

H100 = "Standard_ND96isr_H100_v5"


def shortfall(**changes) -> remedies.Shortfall:
    values = dict(
        pool="train",
        island=0,
        size=H100,
        region="eastus",
        zone="1",
        requested=256,
        obtained=200,
        vcpus_per_node=96,
        quota_family="standardNDSH100v5Family",
    )
    values.update(changes)
    return remedies.Shortfall(**values)


def test_a_partial_island_says_what_was_kept_and_the_exact_numbers_to_ask_for():
    explained = remedies.explain(
        "AllocationFailed", ALLOCATION_MESSAGES["AllocationFailed"], shortfall(), "kept 200, removed 56"
    )
    assert explained.happened == (
        f"Azure had room for 200 of the 256 {H100} VMs island 0 of pool 'train' asked for in eastus zone 1."
    )
    assert explained.did == "kept 200, removed 56"
    assert explained.retryable
    assert "grow STACK --wait" in explained.todo[0] and "56 missing" in explained.todo[0]
    assert explained.todo[-1] == (
        "open an Azure support request for capacity: 56 x Standard_ND96isr_H100_v5 (5,376 vCPUs, quota "
        "family standardNDSH100v5Family) in eastus zone 1"
    )


def test_the_next_zone_and_stand_in_the_policy_allows_are_named():
    explained = remedies.explain(
        "ZonalAllocationFailed",
        ALLOCATION_MESSAGES["ZonalAllocationFailed"],
        shortfall(obtained=0, zones_left=("2", "3"), stand_ins_left=("Standard_ND96isr_H200_v5",)),
        "moved on",
    )
    assert "this zone only" in explained.happened
    assert explained.todo[0] == (
        "`azcluster grow STACK` (or `up`) rebuilds the empty island whole in zone 2, then 3 (the pool's "
        "`capacity.zones`) when its own zone has nothing"
    )
    assert "builds the island as stand-in Standard_ND96isr_H200_v5, after checking Azure" in explained.todo[1]


def test_without_a_policy_the_todo_says_which_keys_to_set():
    explained = remedies.explain("ZonalAllocationFailed", "", shortfall(obtained=0), "nothing kept")
    assert "pools[].capacity.zones` for pool 'train'" in explained.todo[0]
    assert "pools[].capacity.stand_in_sizes" in explained.todo[1]


@pytest.mark.parametrize(
    ("code", "message", "happened", "first"),
    [
        (
            "OverconstrainedAllocationRequest",
            ALLOCATION_MESSAGES["OverconstrainedAllocationRequest"],
            "all of the island's constraints",
            "island_max_nodes",
        ),
        (
            "SkuNotAvailable",
            sku_not_available_message("/x", H100, "eastus", "1", "sub"),
            "not offered to this subscription in eastus zone 1",
            "preflight",
        ),
        (
            "QuotaExceeded",
            "Operation could not be completed as it results in exceeding approved standardNDSH100v5Family "
            "Cores quota.",
            "5,376 vCPUs",
            "request a quota increase: 56 x",
        ),
        ("TooManyRequests", "throttled", "throttled", "Retry-After"),
        ("SomethingNew", "a new error", "SomethingNew: a new error", "read Azure's message"),
    ],
)
def test_each_kind_of_refusal_has_its_own_explanation(code, message, happened, first):
    explained = remedies.explain(code, message, shortfall(), "did")
    assert happened in explained.happened
    assert first in explained.todo[0]
    assert explained.to_json()["code"] == code


def test_operation_not_allowed_is_quota_only_when_azure_says_quota():
    quota = remedies.explain("OperationNotAllowed", "exceeding approved quota", shortfall(), "did")
    other = remedies.explain("OperationNotAllowed", "the VM is being deallocated", shortfall(), "did")
    assert "quota" in quota.happened and "quota" not in other.happened
