"""Images (AZC017-AZC018, AZC055-AZC059): the image reference, whether it fits the size's GPUs and CPU,
what the bootstrap can add to it, and Marketplace purchase plans."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import catalog
from ..spec import ClusterSpec
from .common import at, lustre_enabled, pool_at, preview
from .registry import Problem, rule

IMAGE_URN = re.compile(r"^[^:\s/]+:[^:\s/]+:[^:\s/]+:[^:\s/]+$")


def _image_form(image: str) -> str | None:
    """'urn', 'id' or None: the forms the Compute API's imageReference takes (as components/images.py)."""
    text = image.strip()
    if IMAGE_URN.fullmatch(text):
        return "urn"
    lowered = text.lower()
    if lowered.startswith("/subscriptions/") and "/providers/microsoft.compute/" in lowered:
        return "id"
    if lowered.startswith(("/communitygalleries/", "/sharedgalleries/")):
        return "id"
    return None


@rule(
    "AZC017",
    "error",
    "image-reference-malformed",
    "An image is neither a Marketplace URN nor an image id",
)
def image_reference_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """The Compute API takes a Marketplace image as publisher, offer, sku and version, or an image by
    resource id; anything else cannot be turned into an imageReference.
    """
    images = [(pool_at(i, "image"), f"pool {p.name!r}", p.image) for i, p in enumerate(spec.pools)]
    if spec.login.enabled:
        images.append((at("login.image"), "the login node", spec.login.image))
    for path, owner, image in images:
        if image and _image_form(image) is None:
            yield (
                path,
                f"{owner}: image {preview(image, 60)!r} is neither a Marketplace URN nor an image "
                "resource id.",
                "Use publisher:offer:sku:version (e.g. microsoft-dsvm:ubuntu-hpc:2204:latest) or "
                "/subscriptions/.../providers/Microsoft.Compute/galleries/<g>/images/<i>[/versions/<v>].",
            )


@rule("AZC018", "error", "image-does-not-fit-size", "A pool's image does not fit its GPUs")
def image_does_not_fit_size(spec: ClusterSpec) -> Iterator[Problem]:
    """The wrong image boots but the GPUs never come up: MI300X needs a ROCm image, NVIDIA sizes need a
    CUDA (non-ROCm) image, and GB200 v6 and GB300 v6 (Arm64, NVMe) need Ubuntu 24.04 for Arm64
    (microsoft-dsvm:ubuntu-hpc:2404-gb; AZC055 checks the architecture).

    Sources: Azure/azhpc-images; docs/azure-facts.md ("Images and what a node runs at first boot").
    Only Marketplace URNs are checked; a custom image id cannot be read offline.
    """
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is None or not pool.image or _image_form(pool.image) != "urn":
            continue
        image = pool.image.lower()
        needs = size.required_image_hint or f"a CUDA image such as {size.default_image}"
        problem = None
        if size.gpu_vendor == "amd" and "rocm" not in image:
            problem = f"{size.name} has AMD GPUs but image {pool.image!r} is not a ROCm image"
        elif size.gpu_vendor != "amd" and "rocm" in image:
            problem = f"{size.name} has NVIDIA GPUs but image {pool.image!r} is a ROCm (AMD) image"
        elif size.rack_vms and "2404" not in image:
            problem = f"{size.name} needs Ubuntu 24.04 but image {pool.image!r} is not a 24.04 image"
        if problem:
            yield (
                pool_at(index, "image"),
                f"pool {pool.name!r}: {problem}.",
                f"Use {needs}, or leave `image` out to get the catalogue's default ({size.default_image}).",
            )


def _node_images(spec: ClusterSpec) -> Iterator[tuple[str, str, str, str, object]]:
    """(YAML path of the image, owner, image, the size's CPU architecture, explicit image_plan) of every
    pool whose size the catalogue knows, and of the login node."""
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is not None:
            image = pool.image or size.default_image
            yield (
                pool_at(index, "image"),
                f"pool {pool.name!r} ({size.name})",
                image,
                size.architecture,
                pool.image_plan,
            )
    if spec.login.enabled:
        login = catalog.general_sizes().get(spec.login.size) or catalog.find_size(spec.login.size)
        architecture = login.architecture if login is not None else "x64"
        yield (
            at("login.image"),
            f"the login node ({spec.login.size})",
            spec.login.image,
            architecture,
            spec.login.image_plan,
        )


@rule("AZC055", "error", "image-architecture-mismatch", "An image's CPU architecture does not match its size")
def image_architecture_mismatch(spec: ClusterSpec) -> Iterator[Problem]:
    """An x64 image does not boot on an Arm64 size and the reverse: ND GB200 v6 is Grace (Arm64), and
    Azure refuses the combination (the image's architecture must match the size's). Architectures come from
    the catalogue (`sizes.yaml` architecture, `images.yaml`; an "arm64"/"aarch64" offer or sku marks an
    Arm64 image). GB200's image is microsoft-dsvm:ubuntu-hpc:2404-gb (Azure/azhpc-images issue 603), not
    the x64 2404 image.
    """
    for path, owner, image, architecture, _ in _node_images(spec):
        image_arch = catalog.image_architecture(image)
        if image_arch is not None and image_arch != architecture:
            size = next((s for s in catalog.gpu_sizes().values() if s.architecture == architecture), None)
            suggestion = size.default_image if size is not None and architecture == "Arm64" else None
            yield (
                path,
                f"{owner}: image {preview(image, 60)!r} is {image_arch} but the size is {architecture}.",
                f"Use an {architecture} image"
                + (f" such as {suggestion}" if suggestion else "")
                + ", or leave `image` out for the catalogue's default.",
            )


@rule("AZC056", "warning", "node-software-missing", "Something the bootstrap adds has no build for the node")
def node_software_missing(spec: ClusterSpec) -> Iterator[Problem]:
    """The bootstrap installs the Managed Lustre client (when the image has none) and BlobFuse2, and runs
    Azure's node health checks (AzNHC) where they have a configuration for the size. Not all of them exist
    everywhere: Microsoft builds the Lustre client for Arm64 only on Ubuntu 24.04 (client-install-plan
    support matrix), and AzNHC has no configuration for some Arm64 sizes (Azure/azurehpc-health-checks).
    GB200 and GB300 (rack sizes) run azcluster's own GB checks instead and AzNHC only where the image's copy
    can (AZC133 says which). Said here, at validate, instead of a node that quietly lacks a mount or checks
    less. Catalogue: images.yaml.
    """
    from ..bootstrap import AZNHC_SIZES

    lustre = lustre_enabled(spec)
    blob = spec.storage.blob
    blob_mount = blob.enabled and blob.mount
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is None:
            continue
        image = pool.image or size.default_image
        missing = []
        info = catalog.find_image(image)
        if lustre and info is not None and catalog.lustre_client_for(image, size.architecture) is None:
            missing.append(f"the Managed Lustre client ({info.os}, {size.architecture})")
        blobfuse = catalog.node_software().get("BlobFuse2")
        if blob_mount and blobfuse is not None and size.architecture not in blobfuse.architectures:
            missing.append(f"BlobFuse2 ({size.architecture})")
        if size.architecture != "x64" and size.name.lower() not in AZNHC_SIZES and not size.rack_vms:
            missing.append("AzNHC, Azure's node health checks (no configuration for this size)")
        if missing:
            yield (
                pool_at(index, "image"),
                f"pool {pool.name!r} ({size.name}, {size.architecture}): not available on these nodes: "
                f"{'; '.join(missing)}.",
                "Nodes still come up; health is GPU and InfiniBand presence only where AzNHC is missing. Use "
                "an image that ships the missing pieces, or suppress this finding once you have checked.",
            )


@rule(
    "AZC057",
    "warning",
    "nvlink-imex-not-configured",
    "GB200/GB300 nodes without a scheduler: no IMEX peers, no multi-node NVLink",
)
def nvlink_imex_not_configured(spec: ClusterSpec) -> Iterator[Problem]:
    """A GB200/GB300 v6 VM is a 4-GPU slice of an NVL72 rack; GPUs in different VMs of a rack talk over
    NVLink only through NVIDIA's IMEX service, which needs every peer's address in
    /etc/nvidia-imex/nodes_config.cfg (NVIDIA IMEX guide, "Deployment Models"). With Slurm, azcluster runs
    IMEX per job: the Prolog gives it exactly the job's nodes, the Epilog clears it
    (components/bootstrap/slurm.py), so this fires only for clusters without a scheduler, where no job
    launcher knows which peers belong together: multi-node NVLink (MNNVL, cuMem fabric handles) is off and
    NCCL between VMs uses InfiniBand.
    """
    if spec.scheduler == "slurm":
        return
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is not None and size.rack_vms and pool.nodes > 1:
            yield (
                pool_at(index, "size"),
                f"pool {pool.name!r}: {pool.nodes} {size.name} VMs share NVL72 racks, but without a "
                "scheduler azcluster does not run nvidia-imex with each job's peers: multi-node NVLink is "
                "off; NCCL between VMs uses InfiniBand.",
                "Use `scheduler: slurm` (IMEX per job, from Slurm's Prolog), or write a rack's node "
                "addresses (`azcluster hosts`) to /etc/nvidia-imex/nodes_config.cfg on each node and "
                "restart nvidia-imex; or suppress this.",
            )


@rule("AZC058", "warning", "image-needs-purchase-plan", "An image is sold under a Marketplace purchase plan")
def image_needs_purchase_plan(spec: ClusterSpec) -> Iterator[Problem]:
    """Images from some publishers (AlmaLinux HPC, Rocky Linux, azhpc, azurecyclecloud; catalogue
    `images.yaml` purchase_plans) are sold under a purchase plan: the VM or scale set must carry `plan`
    {publisher, product, name} (azcluster sends it, derived from the URN as Azure/azurehpc pyazhpc/arm.py
    does) and the plan's terms must be accepted once per subscription, or the deployment fails
    (MarketplacePurchaseEligibilityFailed).
    """
    from ..images import purchase_plan

    for path, owner, image, _, explicit in _node_images(spec):
        plan = purchase_plan(image, explicit)
        if plan is not None:
            urn = ":".join((plan["publisher"], plan["product"], plan["name"], "latest"))
            yield (
                path,
                f"{owner}: image {preview(image, 60)!r} is sold under a purchase plan; azcluster sends plan "
                f"{{publisher: {plan['publisher']}, product: {plan['product']}, name: {plan['name']}}}.",
                f"Accept its terms once per subscription: `az vm image terms accept --urn {urn}`.",
            )


@rule("AZC059", "error", "image-plan-mismatch", "image_plan does not match the Marketplace image")
def image_plan_mismatch(spec: ClusterSpec) -> Iterator[Problem]:
    """A Marketplace image's plan is its publisher, offer (product) and sku (name); a different plan is
    refused by Azure. `image_plan` is for images Azure cannot tell (a gallery image built from a plan
    image); for a URN azcluster derives it.
    """
    for path, owner, image, _, explicit in _node_images(spec):
        parts = image.strip().split(":")
        if explicit is None or _image_form(image) != "urn":
            continue
        given = (explicit.publisher.lower(), explicit.product.lower(), explicit.name.lower())
        if given != tuple(part.lower() for part in parts[:3]):
            yield (
                path.rsplit(".", 1)[0] + ".image_plan",
                f"{owner}: image_plan {explicit.publisher}:{explicit.product}:{explicit.name} does not match "
                f"image {preview(image, 60)!r}.",
                "Remove `image_plan` (azcluster derives it from the URN) or make it publisher, offer, sku "
                "of the image.",
            )
