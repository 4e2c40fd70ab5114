"""`python -m azcluster`: the same CLI as the `azcluster` script (what ssh_config entries fall back to)."""

from azcluster.cli import main

main()
