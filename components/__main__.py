"""`python -m azcluster.components` (or the Pulumi CLI, through PulumiPlugin.yaml beside this file) serves
Cluster and GpuPool as a Pulumi component package, for programs in any Pulumi language."""

from azcluster.components.plugin import main

if __name__ == "__main__":
    main()
