"""The stack program: config -> ClusterSpec -> Cluster -> stack outputs.

`stacks/__main__.py` calls `build_from_config()` under `pulumi up`; `azcluster plan` calls `build(spec)`
under Pulumi mocks. Both go through `build`, so what the plan shows is what `up` deploys.

Problems with the stack's config are raised as `pulumi.RunError`, which Pulumi prints as one message
without a Python traceback: the YAML path, what is wrong, and (for rule findings) what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from .spec import CLUSTER_CONFIG_KEY, LOCATION_CONFIG_KEY, ClusterSpec, parse_cluster, yaml_path


def build(spec: ClusterSpec) -> Any:
    """Create the Cluster named after the spec and export its outputs; returns the Cluster."""
    from .cluster import Cluster

    cluster = Cluster(spec.name, spec)
    for key, value in cluster.outputs.items():
        pulumi.export(key, value)
    return cluster


def spec_from_config(base_dir: Path | str | None = None) -> ClusterSpec:
    """The stack's `azcluster:cluster` (and `azure-native:location`) as a ClusterSpec.

    `base_dir` resolves relative SSH key paths; default: the working directory, which Pulumi sets to
    the project directory (stacks/).
    """
    from pydantic import ValidationError

    try:
        cluster = pulumi.Config("azcluster").require_object("cluster")
    except pulumi.ConfigMissingError:
        raise pulumi.RunError(
            f"the stack has no `{CLUSTER_CONFIG_KEY}` config; describe the cluster under that key in "
            "Pulumi.<stack>.yaml (`azcluster init NAME` writes an example)"
        ) from None
    if not isinstance(cluster, dict):
        raise pulumi.RunError(f"`{CLUSTER_CONFIG_KEY}` must be a mapping, not {type(cluster).__name__}")
    config: dict[str, Any] = {CLUSTER_CONFIG_KEY: cluster}
    location = pulumi.Config("azure-native").get("location")
    if location:
        config[LOCATION_CONFIG_KEY] = location
    try:
        return parse_cluster(config, base_dir=Path(base_dir) if base_dir is not None else Path.cwd())
    except ValidationError as err:
        raise pulumi.RunError(describe_validation_error(err, config)) from None


def build_from_config(base_dir: Path | str | None = None) -> Any:
    """Read the stack's config, build the Cluster and export its outputs (the body of stacks/__main__.py)."""
    from .cluster import ClusterSpecError

    spec = spec_from_config(base_dir)
    try:
        return build(spec)
    except ClusterSpecError as err:
        raise pulumi.RunError(f"{err}\nRun `azcluster validate` for details.") from None
    except ValueError as err:
        raise pulumi.RunError(str(err)) from None


def describe_validation_error(err: Any, config: dict[str, Any]) -> str:
    """One line per schema problem, each with the YAML path it is about."""
    lines = [
        f"  {yaml_path(problem['loc'], config)}: {problem['msg']}"
        for problem in err.errors(include_url=False)
    ]
    count = len(lines)
    return f"the stack's cluster config has {count} problem{'s' if count != 1 else ''}:\n" + "\n".join(lines)
