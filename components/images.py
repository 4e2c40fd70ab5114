"""Turn the spec's image string into the Compute API's `imageReference` (shared by GpuPool and LoginNode).

The spec accepts what people copy from `az vm image list` or the portal: a Marketplace URN
`publisher:offer:sku:version`, or the resource id of a managed image / Azure Compute Gallery image
(optionally a version), or a community / shared gallery id. Anything else is an error that says which
forms are accepted, raised while the program is built rather than by Azure minutes later.
"""

from __future__ import annotations

import re
from typing import Any

from . import catalog

_URN = re.compile(r"^[^:\s/]+:[^:\s/]+:[^:\s/]+:[^:\s/]+$")


def purchase_plan(image: str, explicit: Any = None) -> dict[str, str] | None:
    """The `plan` a VM or scale set must send for `image`: the spec's `image_plan` when given, else the one
    the catalogue derives from a Marketplace URN of a publisher that sells under a plan (publisher,
    product = offer, name = sku, as Azure/azurehpc pyazhpc/arm.py builds it), else None."""
    if explicit is not None:
        return {"publisher": explicit.publisher, "product": explicit.product, "name": explicit.name}
    return catalog.purchase_plan(image)


def image_reference(image: str) -> dict[str, str]:
    """`imageReference` (pulumi-azure-native snake_case keys) for a URN or an image id."""
    text = image.strip()
    if _URN.match(text):
        publisher, offer, sku, version = text.split(":")
        return {"publisher": publisher, "offer": offer, "sku": sku, "version": version}
    lowered = text.lower()
    if lowered.startswith("/subscriptions/") and "/providers/microsoft.compute/" in lowered:
        return {"id": text}
    if lowered.startswith("/communitygalleries/"):
        return {"community_gallery_image_id": text}
    if lowered.startswith("/sharedgalleries/"):
        return {"shared_gallery_image_id": text}
    raise ValueError(
        f"image {image!r} is neither a Marketplace URN (publisher:offer:sku:version, e.g. "
        "microsoft-dsvm:ubuntu-hpc:2204:latest) nor an image resource id "
        "(/subscriptions/.../providers/Microsoft.Compute/images/... or .../galleries/.../images/...)"
    )
