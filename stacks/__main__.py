"""The azcluster Pulumi program: `cd stacks && pulumi up -s <stack>` deploys Pulumi.<stack>.yaml.

The cluster is described under the stack's `azcluster:cluster` config and the region under
`azure-native:location`; `azcluster plan/up` run this same program.
"""

from pathlib import Path

# Pulumi.yaml runs this with the project's .venv, where `make setup` installed azcluster.
from azcluster.components.program import build_from_config

HERE = Path(__file__).resolve().parent

build_from_config(base_dir=HERE)
