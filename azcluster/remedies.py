"""What an Azure error code means and what to do about it: the one table `up` and `start`/`stop` (ops)
map failures through.

Azure reports failures as an error code plus a message, and the code arrives in several wrappings:
pulumi-azure-native's azcore errors print `ERROR CODE: AllocationFailed` above a JSON body with
`"code": "..."`, older autorest errors print `Code="..."`, ARM template validation wraps the real cause in
`InvalidTemplateDeployment` or `ResourceDeploymentFailure` with `details`. `extract_codes` finds every code
in a text, and `primary_code` picks the one a person can act on (the inner cause, not the wrapper).

Codes and remedies follow Microsoft's "common Azure deployment errors" page and the allocation-failure
troubleshooting guide (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/
common-deployment-errors, https://learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/
allocation-failure), summarised in docs/azure-facts.md ("When Azure says no").

Each remedy also has a `kind` (capacity, quota, ...). A caller that knows more than the code, like ops
knowing which island of which size failed to start, words its hint by kind; so a code added here with a
known kind gets that caller's wording, and one with a new kind gets this table's generic advice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CAPACITY = "capacity"  # Azure has no VMs of that size to give right now
CONSTRAINTS = "constraints"  # size, zone and placement group cannot be satisfied together
QUOTA = "quota"  # a vCPU or resource quota of the subscription
RESTRICTED = "restricted"  # the size is not offered to this subscription there
THROTTLED = "throttled"  # Resource Manager is throttling the subscription
NOT_FOUND = "not_found"  # the resource is not there (deleted, or another group or subscription)
PERMISSION = "permission"  # the signed-in identity lacks a role
OTHER = "other"


@dataclass(frozen=True)
class Remedy:
    code: str
    what: str
    """What the code means, in one sentence."""
    todo: str
    """What to do about it; may mention STACK, which `for_stack` replaces."""
    retryable: bool = False
    """True when re-running the same command later can succeed without changing anything."""
    kind: str = OTHER
    """What sort of problem it is (CAPACITY, QUOTA, ...), for callers that add their own context."""

    def for_stack(self, stack: str, command: str = "up") -> str:
        """The todo for `stack`. Where it says to re-run `azcluster up`, a failed `command` (e.g. start)
        says to re-run itself instead."""
        return self.todo.replace("azcluster up STACK", f"azcluster {command} STACK").replace("STACK", stack)


_CAPACITY = (
    "re-run `azcluster up STACK` later (it resumes from what exists), move the pool to another zone "
    "(`zone:`) or region, or allocate from a capacity reservation "
    "(`pools[].capacity.reservation`, for sizes Azure reserves); for an existing pinned scale set, "
    "deallocate all its VMs and start them together (`azcluster stop/start STACK`)"
)
_QUOTA = (
    "the subscription's vCPU quota for this VM family (or the region's total) is too low: "
    "`azcluster preflight STACK` shows what is needed and what is free; request an increase in the portal "
    "(Quotas > Compute) or with `az quota update`, or reduce `pools[].nodes`"
)

_NOT_THERE = "A resource is not there: deleted outside azcluster, or in another group or subscription."
_NOT_THERE_TODO = (
    "check --subscription and the stack's resource group; `azcluster refresh STACK` drops what was deleted "
    "outside azcluster, then re-run `azcluster up STACK`"
)

REMEDIES: dict[str, Remedy] = {
    r.code: r
    for r in [
        Remedy(
            "AllocationFailed",
            "Azure has no capacity for this VM size in this region right now.",
            _CAPACITY,
            retryable=True,
            kind=CAPACITY,
        ),
        Remedy(
            "ZonalAllocationFailed",
            "Azure has no capacity for this VM size in the chosen availability zone right now.",
            "try another zone (`zone:`) or leave `zone` out; or " + _CAPACITY,
            retryable=True,
            kind=CAPACITY,
        ),
        Remedy(
            "OverconstrainedAllocationRequest",
            "The combination of size, zone, placement group and features cannot be satisfied together.",
            "relax a constraint: leave `zone` out, make islands smaller (`pools[].island_max_nodes`), or use "
            "a capacity reservation; then re-run `azcluster up STACK`",
            retryable=True,
            kind=CONSTRAINTS,
        ),
        Remedy(
            "OverconstrainedZonalAllocationRequest",
            "The zone cannot satisfy the size together with the other constraints.",
            "leave `zone` out or pick another zone, or make islands smaller (`pools[].island_max_nodes`)",
            retryable=True,
            kind=CONSTRAINTS,
        ),
        Remedy(
            "SkuNotAvailable",
            "The VM size is restricted for this subscription in this region or zone.",
            "`azcluster preflight STACK` shows where the size is offered to you; pick that region/zone or "
            "ask Azure support to lift the restriction (a 'SKU access' request)",
            kind=RESTRICTED,
        ),
        Remedy("QuotaExceeded", "A quota of the subscription would be exceeded.", _QUOTA, kind=QUOTA),
        Remedy("ResourceQuotaExceeded", "A quota of the subscription would be exceeded.", _QUOTA, kind=QUOTA),
        Remedy(
            "OperationNotAllowed", "Azure refused the operation (usually a vCPU quota).", _QUOTA, kind=QUOTA
        ),
        Remedy(
            "InvalidTemplateDeployment",
            "Azure rejected the request when validating it.",
            "read the inner error above; `azcluster validate STACK` and `azcluster preflight STACK` catch "
            "most causes before deploying",
        ),
        Remedy(
            "ResourceDeploymentFailure",
            "A resource ended in the Failed state.",
            "read the inner error above; re-run `azcluster up STACK` once fixed (it resumes)",
        ),
        Remedy(
            "MissingSubscriptionRegistration",
            "A resource provider is not registered for the subscription.",
            "register it, e.g. `az provider register --namespace Microsoft.StorageCache`, then re-run",
            retryable=True,
        ),
        Remedy(
            "SubscriptionNotRegistered",
            "A resource provider is not registered for the subscription.",
            "register it with `az provider register --namespace <namespace from the message>`, then re-run",
            retryable=True,
        ),
        Remedy(
            "AuthorizationFailed",
            "The identity running azcluster lacks a permission.",
            "grant it Contributor and User Access Administrator (or Role Based Access Control "
            "Administrator) on the subscription or resource group; check with `az role assignment list`",
            kind=PERMISSION,
        ),
        Remedy(
            "RequestDisallowedByPolicy",
            "An Azure Policy assignment denied the request.",
            "ask your Azure administrator for an exemption, or change the property the policy names",
        ),
        Remedy(
            "ScopeLocked",
            "A resource lock on the subscription or resource group prevents the change.",
            "remove the lock (`az lock list`) or ask its owner, then re-run",
        ),
        Remedy(
            "MarketplacePurchaseEligibilityFailed",
            "The subscription cannot buy the marketplace image.",
            "accept the image terms: `az vm image terms accept --urn <publisher:offer:sku:version>`, or use "
            "another image",
        ),
        Remedy(
            "ResourcePurchaseValidationFailed",
            "The marketplace image's terms were not accepted.",
            "accept them: `az vm image terms accept --urn <publisher:offer:sku:version>`, then re-run",
        ),
        Remedy(
            "InvalidParameter",
            "Azure rejected a property value.",
            "the message names the property; `azcluster validate STACK` checks most values offline",
        ),
        Remedy(
            "OSProvisioningTimedOut",
            "VMs did not report ready in time (usually first-boot scripts).",
            "look at the VM's boot diagnostics / serial log; re-run `azcluster up STACK` once fixed",
            retryable=True,
        ),
        Remedy(
            "VMStartTimedOut",
            "VMs did not start in time.",
            "re-run `azcluster up STACK`; if it persists, check boot diagnostics",
            retryable=True,
        ),
        Remedy(
            "AnotherOperationInProgress",
            "Another operation on the same resource is still running.",
            "wait for it to finish, then re-run `azcluster up STACK`",
            retryable=True,
        ),
        Remedy(
            "Conflict",
            "The resource is in a state that conflicts with the change.",
            "wait a few minutes and re-run `azcluster up STACK`",
            retryable=True,
        ),
        Remedy(
            "TooManyRequests",
            "Azure throttled the requests.",
            "wait a few minutes and re-run `azcluster up STACK`",
            retryable=True,
            kind=THROTTLED,
        ),
        Remedy(
            "ResourceNotFound",
            _NOT_THERE,
            _NOT_THERE_TODO,
            kind=NOT_FOUND,
        ),
        Remedy(
            "NotFound",
            _NOT_THERE,
            _NOT_THERE_TODO,
            kind=NOT_FOUND,
        ),
        Remedy(
            "NetworkingInternalOperationError",
            "Azure networking hit an internal error.",
            "re-run `azcluster up STACK`; it usually succeeds on retry",
            retryable=True,
        ),
        Remedy(
            "InternalServerError",
            "Azure hit an internal error.",
            "re-run `azcluster up STACK`; it usually succeeds on retry",
            retryable=True,
        ),
    ]
}

WRAPPERS = frozenset(
    {
        "InvalidTemplateDeployment",
        "ResourceDeploymentFailure",
        "DeploymentFailed",
        "Conflict",
        "BadRequest",
        "InternalServerError",
    }
)
"""Codes that wrap the real cause; an inner code beats them."""

_PATTERNS = [
    re.compile(r"ERROR CODE:\s*([A-Za-z][A-Za-z0-9_.]*)"),
    re.compile(r"\"code\"\s*:\s*\"([A-Za-z][A-Za-z0-9_.]*)\""),
    re.compile(r"\bCode=\"([A-Za-z][A-Za-z0-9_.]*)\""),
    re.compile(r"\b[Ee]rror [Cc]ode:\s*([A-Za-z][A-Za-z0-9_.]*)"),
]
_WORDS = frozenset({"Conflict", "NotFound"})
_KNOWN_BARE = re.compile(r"\b(" + "|".join(sorted(REMEDIES, key=len, reverse=True)) + r")\b")


def extract_codes(text: str) -> list[str]:
    """Every error code in `text`, in order of appearance, without repeats."""
    found: list[tuple[int, str]] = []
    for pattern in _PATTERNS:
        found.extend((m.start(1), m.group(1)) for m in pattern.finditer(text))
    # Known codes also count when written bare, e.g. "(AllocationFailed) Allocation failed"; not the
    # generic ones that are also plain words in a sentence.
    found.extend((m.start(1), m.group(1)) for m in _KNOWN_BARE.finditer(text) if m.group(1) not in _WORDS)
    codes: list[str] = []
    for _, code in sorted(found):
        if code not in codes:
            codes.append(code)
    return codes


def primary_code(text: str) -> str | None:
    """The code a person can act on: the first specific code we know, else any specific code, else the
    wrapper."""
    codes = extract_codes(text)
    specific = [code for code in codes if code not in WRAPPERS]
    known = [code for code in specific if code in REMEDIES]
    if known:
        # OperationNotAllowed is vague; a more specific known code next to it wins.
        better = [code for code in known if code != "OperationNotAllowed"]
        return (better or known)[0]
    if specific:
        return specific[0]
    return codes[0] if codes else None


def remedy_for(code: str | None, message: str = "") -> Remedy | None:
    """The remedy for a code. OperationNotAllowed only means quota when the message says so, and a code
    we do not know whose message says it was throttled is throttling."""
    if code is None:
        return None
    if code == "OperationNotAllowed" and "quota" not in message.lower():
        return Remedy(
            code,
            "Azure refused the operation.",
            "the message says why; if it mentions a VM state, wait and re-run `azcluster up STACK`",
        )
    if code not in REMEDIES and "throttl" in message.lower():
        return REMEDIES["TooManyRequests"]
    return REMEDIES.get(code)


_JSON_MESSAGE = r"\"code\"\s*:\s*\"{code}\"\s*,\s*\"message\"\s*:\s*\"((?:[^\"\\]|\\.)*)\""
_JSON_MESSAGE_FIRST = r"\"message\"\s*:\s*\"((?:[^\"\\]|\\.)*)\"\s*,\s*\"code\"\s*:\s*\"{code}\""
_AUTOREST_MESSAGE = r"Code=\"{code}\"\s+Message=\"((?:[^\"\\]|\\.)*)\""
_BOILERPLATE = re.compile(
    r"^(-{3,}|RESPONSE \d+|ERROR CODE|(PUT|GET|POST|PATCH|DELETE) https?://|[{}\[\],]+$)"
)


def azure_message(text: str, code: str | None) -> str:
    """Azure's own sentence for `code` in an error text (JSON body or autorest form); else the first line
    that is not HTTP boilerplate."""
    if code:
        escaped = re.escape(code)
        for pattern in (_JSON_MESSAGE, _JSON_MESSAGE_FIRST, _AUTOREST_MESSAGE):
            match = re.search(pattern.format(code=escaped), text)
            if match:
                return match.group(1).replace('\\"', '"').replace("\\n", " ").strip()
    for line in text.splitlines():
        stripped = line.strip().removeprefix("error:").strip()
        if stripped and not _BOILERPLATE.match(stripped):
            return stripped
    return text.strip()


# --- capacity refusals: what happened, what azcluster did, what the user can do ---------------------------


@dataclass(frozen=True)
class Shortfall:
    """Where Azure said no while placing one island, with the numbers a person (or support) needs."""

    pool: str
    island: int
    size: str
    region: str
    zone: str | None
    requested: int
    obtained: int
    vcpus_per_node: int | None = None
    quota_family: str | None = None
    zones_left: tuple[str, ...] = ()
    """Zones the pool's policy allows that were not tried yet."""
    stand_ins_left: tuple[str, ...] = ()
    """Stand-in sizes the pool's policy allows that were not tried yet."""

    @property
    def missing(self) -> int:
        return max(self.requested - self.obtained, 0)

    @property
    def where(self) -> str:
        return f"{self.region} zone {self.zone}" if self.zone else self.region

    def numbers(self) -> str:
        """The exact ask: nodes, size, vCPUs and quota family, region and zone."""
        vcpus = f" ({self.missing * self.vcpus_per_node:,} vCPUs" if self.vcpus_per_node else ""
        family = f", quota family {self.quota_family}" if self.quota_family and vcpus else ""
        close = ")" if vcpus else ""
        return f"{self.missing} x {self.size}{vcpus}{family}{close} in {self.where}"


@dataclass(frozen=True)
class Explanation:
    """One refusal explained: Azure's code, what it means here, what azcluster did, and what to do."""

    code: str
    happened: str
    did: str
    todo: tuple[str, ...]
    retryable: bool

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "happened": self.happened,
            "did": self.did,
            "todo": list(self.todo),
            "retryable": self.retryable,
        }


def _other_zones(s: Shortfall) -> str:
    if s.zones_left:
        return (
            f"`azcluster grow STACK` (or `up`) rebuilds the empty island whole in zone "
            f"{', then '.join(s.zones_left)} (the pool's `capacity.zones`) when its own zone has nothing"
        )
    return (
        f"list other zones under `pools[].capacity.zones` for pool {s.pool!r} (the island moves whole; "
        "storage stays where it is)"
    )


def _stand_in(s: Shortfall) -> str:
    if s.stand_ins_left:
        return (
            f"once no zone has {s.size}, `azcluster grow STACK` (or `up`) builds the island as stand-in "
            f"{', then '.join(s.stand_ins_left)}, after checking Azure offers it there and its quota has room"
        )
    return (
        "allow a stand-in size under `pools[].capacity.stand_in_sizes` (e.g. the H200 size for H100; its "
        "own price and quota family apply)"
    )


def _wait(s: Shortfall) -> str:
    return (
        f"keep trying: `azcluster grow STACK --wait 2h` retries with back-off and fills the {s.missing} "
        "missing node(s) as Azure frees them"
    )


def _support(s: Shortfall, what: str) -> str:
    return f"open an Azure support request for {what}: {s.numbers()}"


def explain(code: str | None, message: str, shortfall: Shortfall, did: str) -> Explanation:
    """An Azure refusal met while placing an island, in words: `did` is what azcluster did about it
    (kept N, removed the failed instances, moved the island...), and the todo lists what the user can
    do, most likely first, with the exact numbers a support request needs."""
    s = shortfall
    remedy = remedy_for(code, message)
    kind = remedy.kind if remedy is not None else OTHER
    code = code or "unknown"
    if code in ("ZonalAllocationFailed", "OverconstrainedZonalAllocationRequest"):
        happened = f"Azure has no room for {s.size} in {s.where} right now (this zone only)."
        todo = (_other_zones(s), _stand_in(s), _wait(s), _support(s, "zonal capacity"))
    elif kind == CAPACITY:
        happened = (
            f"Azure had room for {s.obtained} of the {s.requested} {s.size} VMs island {s.island} of pool "
            f"{s.pool!r} asked for in {s.where}."
        )
        todo = (_wait(s), _other_zones(s), _stand_in(s), _support(s, "capacity"))
    elif kind == CONSTRAINTS:
        happened = (
            f"Azure cannot place {s.size} with all of the island's constraints together in {s.where} "
            "(one placement group, zone, accelerated networking)."
        )
        todo = (
            f"make islands smaller (`pools[].island_max_nodes`, now at least {s.requested})",
            _other_zones(s),
            _stand_in(s),
            _wait(s),
        )
    elif kind == RESTRICTED:
        happened = f"{s.size} is not offered to this subscription in {s.where}."
        todo = (
            f"`azcluster preflight STACK` shows where {s.size} is offered to you",
            _other_zones(s),
            _stand_in(s),
            f"ask Azure support for SKU access: {s.size} in {s.where}",
        )
    elif kind == QUOTA:
        happened = f"The subscription's vCPU quota has no room for {s.numbers()}."
        todo = (
            f"request a quota increase: {s.numbers()} on top of what you use now (portal: Quotas > "
            "Compute, or `az quota update`)",
            "`azcluster preflight STACK` shows what is needed and what is free per family",
            f"or lower `pools[].nodes` of pool {s.pool!r}",
        )
    elif kind == THROTTLED:
        happened = "Azure Resource Manager throttled the requests."
        todo = ("nothing: azcluster waits as Azure asks (Retry-After) and tries again",)
    else:
        happened = remedy.what if remedy is not None else f"Azure refused with {code}: {message}"
        todo = (remedy.todo,) if remedy is not None else ("read Azure's message above",)
    retryable = remedy.retryable if remedy is not None else False
    return Explanation(code, happened, did, todo, retryable)
