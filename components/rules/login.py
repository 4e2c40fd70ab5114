"""The login node (AZC019)."""

from __future__ import annotations

from collections.abc import Iterator

from .. import catalog
from ..spec import ClusterSpec
from .common import at, did_you_mean
from .registry import Problem, rule


@rule("AZC019", "warning", "login-size-unknown", "The login node's size is not in the catalogue")
def login_size_unknown(spec: ClusterSpec) -> Iterator[Problem]:
    """Many general-purpose sizes exist, so an unknown login size is not an error; but azcluster cannot
    price it or check its quota family, and a typo fails the deployment.
    """
    if not spec.login.enabled:
        return
    known = {name.lower() for name in catalog.general_sizes()}
    if spec.login.size.lower() in known or catalog.find_size(spec.login.size) is not None:
        return
    yield (
        at("login.size"),
        f"login size {spec.login.size!r} is not in azcluster's catalogue: it cannot be priced or "
        "quota-checked.",
        f"{did_you_mean(spec.login.size, [*catalog.general_sizes(), *catalog.gpu_sizes()])}"
        "Check the spelling with `az vm list-sizes -l <region>`; Standard_D4s_v5 is the default.",
    )
