"""Operations on a built cluster, found in Azure by its tags: no Pulumi state needed.

One module per job, each with its view (how it prints) beside it, so each file has one reason to change:
- cluster.py: the stack's spec, and the cluster's island scale sets found by tag.
- nodes.py: what an island's nodes and the login node look like now (power, health, private IP).
- status.py / status_view.py: `status`, the cluster read whole, and its tables.
- diagnose.py / diagnose_view.py: which check failed on an unhealthy node, read through Run Command.
- power.py / power_hints.py / power_view.py: `stop` and `start`, per-island outcomes and what to do.
- hosts.py / hosts_view.py: `hosts`, one hostfile per InfiniBand island.
- loginhosts.py: the hostfiles installed on the login node; runcommand.py: Azure Run Command plumbing.
- parallel.py: one Azure call per island or node in parallel, with a live progress line each.
- fabrictest.py / fabrictest_view.py: `test`, an all-reduce per InfiniBand island submitted through Slurm
  on the login node; ncclperf.py reads what all_reduce_perf prints.

Nothing is re-exported here: importing `azcluster.ops` stays free, and each caller names the job it uses.
"""
