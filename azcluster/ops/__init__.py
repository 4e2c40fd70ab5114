"""Operations on a built cluster, found in Azure by its tags: no Pulumi state needed.

One module per job, each with its view (how it prints) beside it, so each file has one reason to change.
Layered one way down: views (`*_view.py`) on top, readers below them, the shared data at the bottom.
Readers share data through model.py, never by importing each other's module back; readers never import
a view (import-linter contracts in pyproject.toml check both).
- model.py: the data every job reads and shows (islands, nodes, login node, diagnosis, Slurm and elastic
  views, the whole ClusterStatus); imports nothing that talks to Azure.
- cluster.py: the stack's spec, and the cluster's island scale sets found by tag.
- nodes.py: what an island's nodes and the login node look like now (power, health, private IP).
- status.py / status_view.py: `status`, the cluster read whole (nodes, diagnosis, Slurm, elastic), and
  its tables.
- diagnose.py / diagnose_view.py: which check failed on an unhealthy node, read through Run Command.
- slurmstate.py / slurmstate_view.py: Slurm's node states read with sinfo on the login node.
- elastic.py: per island, whether the elastic policy switched it off, and since when.
- power.py / power_hints.py / power_view.py: `stop` and `start`, per-island outcomes and what to do.
- hosts.py / hosts_view.py: `hosts`, one hostfile per InfiniBand island.
- loginhosts.py: the hostfiles installed on the login node; runcommand.py: Azure Run Command plumbing.
- parallel.py: one Azure call per island or node in parallel, with a live progress line each.
- fabrictest.py / fabrictest_view.py: `test`, an all-reduce per InfiniBand island submitted through Slurm
  on the login node; ncclperf.py reads what all_reduce_perf prints.

Nothing is re-exported here: importing `azcluster.ops` stays free, and each caller names the job it uses.
"""
