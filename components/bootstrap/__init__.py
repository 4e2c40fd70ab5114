"""What runs on the nodes at first boot: cloud-init rendered per pool from the spec and catalogue.

The constants below are the contract between the node side (the health endpoint the bootstrap installs)
and the scale set (the Application Health extension that probes it).
"""

HEALTH_PORT = 8585
HEALTH_PATH = "/health"
