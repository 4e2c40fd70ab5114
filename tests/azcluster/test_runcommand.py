"""The Run Command plumbing `status` and `hosts --install` share: Azure's two answer shapes, and the size
the Linux extension measures a script by."""

from __future__ import annotations

import base64

from azcluster.ops import runcommand
from tests.fakes.arm import fixture


def test_run_command_output_in_both_of_azures_shapes() -> None:
    example = fixture("run_command.json")  # the REST example's body: StdOut and StdErr statuses
    example["value"][0]["message"], example["value"][1]["message"] = "Hello World!", ""
    assert runcommand.result_streams(example) == ("Hello World!", "", None)

    linux = fixture("run_command_linux.json")
    linux["value"][0]["message"] = 'Enable succeeded: \n[stdout]\n{"a": 1}\n\n[stderr]\nwarning: x\n'
    assert runcommand.result_streams(linux) == ('{"a": 1}\n', "warning: x\n", None)
    linux["value"][0]["message"] = "Enable succeeded: \n[stdout]\n\n[stderr]\n"
    assert runcommand.result_streams(linux) == ("", "", None)

    failed = {
        "value": [
            {
                "code": "ProvisioningState/failed",
                "level": "Error",
                "displayStatus": "Provisioning failed",
                "message": "Enable failed: failed to get configuration: invalid configuration",
            }
        ]
    }
    assert (
        runcommand.result_streams(failed)[2]
        == "Enable failed: failed to get configuration: invalid configuration"
    )


def test_script_size_is_what_the_linux_extension_measures() -> None:
    lines = ["set -eu", "echo héllo"]
    joined = "set -eu\necho héllo".encode()
    assert runcommand.script_size(lines) == len(base64.b64encode(joined))
    assert runcommand.SCRIPT_BUDGET < runcommand.SCRIPT_LIMIT == 256 * 1024


def test_a_refusal_says_whether_it_is_about_permission() -> None:
    assert runcommand.RunCommandFailed("x", "AuthorizationFailed", 403).denied
    assert runcommand.RunCommandFailed("x", "LinkedAuthorizationFailed", 403).denied
    assert not runcommand.RunCommandFailed("x", "Conflict", 409).denied
