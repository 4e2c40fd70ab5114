"""Your own Pulumi program using azcluster's components: `cd examples/own-program && pulumi up`.

A whole cluster from a spec (the same checks as `azcluster validate` run first), then one more
InfiniBand pool that joins the cluster's network and node identity. Runs offline in azcluster's tests.
"""

import pulumi

from azcluster.components import Cluster, ClusterSpec, GpuPool
from azcluster.components.catalog import find_size
from azcluster.components.gpu_pool import GpuPoolArgs

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 you@laptop"

spec = ClusterSpec.model_validate(
    {
        "name": "lab",
        "location": "eastus",
        "zone": "1",
        "pools": [{"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 16}],
        "ssh": {"public_keys": [SSH_KEY]},
    }
)
cluster = Cluster("lab", spec)

extra = spec.pools[0].model_copy(update={"name": "extra", "nodes": 4})
pool = GpuPool(
    "lab-extra",
    GpuPoolArgs(
        cluster_name=spec.name,
        pool=extra,
        size=find_size(extra.size),
        location=spec.location,
        zone=spec.zone,
        resource_group_name=cluster.network.resource_group_name,
        subnet_id=cluster.network.subnet_ids["compute"],
        identity_id=cluster.identity.id,
        ssh_public_keys=spec.ssh.public_keys,
    ),
)

pulumi.export("scale_sets", cluster.outputs["scale_sets"])
pulumi.export("extra_scale_sets", pool.scale_set_names)
