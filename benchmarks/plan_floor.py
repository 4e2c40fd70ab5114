"""The Pulumi SDK's own cost of registering N GPU scale sets: the floor under `azcluster plan`'s per-set cost.

`python benchmarks/plan_floor.py STACK N` plans STACK once to take the keyword arguments azcluster gives
its first scale set (custom data and all), then registers N `compute.VirtualMachineScaleSet` with exactly
those arguments under Pulumi's own `MockMonitor` (pulumi.runtime.mocks, the unit-test harness Pulumi
documents), answered as `azcluster plan` answers them (mockrun._PlanMocks). Nothing of azcluster runs per
set: no rendering, no rules, no recording, no output. bench_plan_scale.py runs this as a process per N
and reports the slope next to the plan's.
"""

from __future__ import annotations

import sys
from typing import Any


def first_scale_set_arguments(stack: str) -> dict[str, Any]:
    """The keyword arguments azcluster's program passes to its first compute.VirtualMachineScaleSet."""
    from pulumi_azure_native import compute

    from azcluster import plan, stackfile

    taken: list[dict[str, Any]] = []
    real = compute.VirtualMachineScaleSet

    class Taking(real):  # type: ignore[misc, valid-type]
        def __init__(self, name: str, opts: Any = None, **arguments: Any) -> None:
            if not taken:
                taken.append(arguments)
            super().__init__(name, opts=opts, **arguments)

    compute.VirtualMachineScaleSet = Taking
    try:
        plan.plan_stack(stackfile.load_stack(stack))
    finally:
        compute.VirtualMachineScaleSet = real
    if not taken:
        raise SystemExit(f"{stack}: the plan registered no compute.VirtualMachineScaleSet to copy")
    return taken[0]


def register(count: int, arguments: dict[str, Any]) -> None:
    """`count` scale sets with `arguments` under Pulumi's MockMonitor (no azcluster recorder)."""
    from pulumi.runtime import mocks
    from pulumi_azure_native import compute

    from azcluster import mockrun

    class Answers(mockrun._PlanMocks, mocks.Mocks):
        pass

    class Monitor(mocks.MockMonitor):
        def __init__(self, capture: bool = False) -> None:
            super().__init__(Answers())
            self.secrets: set[str] = set()

        def planned(self) -> list[Any]:
            return []

    def program() -> None:
        for index in range(count):
            compute.VirtualMachineScaleSet(f"gpu-ib{index}", **arguments)

    mockrun._RECORDING_MONITOR = Monitor
    mockrun.run_program(program, stack="floor")


def main() -> int:
    stack, count = sys.argv[1], int(sys.argv[2])
    register(count, first_scale_set_arguments(stack))
    return 0


if __name__ == "__main__":
    sys.exit(main())
