"""The azcluster Pulumi program: `cd stacks && pulumi up -s <stack>` deploys Pulumi.<stack>.yaml.

The cluster is described under the stack's `azcluster:cluster` config and the region under
`azure-native:location`; `azcluster plan/up` run this same program.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Run from a checkout without installing: make the repository's packages importable.
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from components.program import build_from_config  # noqa: E402

build_from_config(base_dir=HERE)
