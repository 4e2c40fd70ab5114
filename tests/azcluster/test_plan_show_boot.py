"""Reviewable custom data: `plan --json` shows a secret custom data decoded with the munge key masked, and
`plan --show-boot DIR` writes each VM's and scale set's cloud-config; the key never appears in any output,
everything else does."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from azcluster import mockrun, plan
from azcluster.components import bootstrap, cluster_key
from azcluster.components.bootstrap.review import MASK, mask_files, masked_cloud_config
from azcluster.components.cluster import Cluster
from azcluster.components.spec import ClusterSpec
from tests.clirunner import run_cli

MUNGE_KEY = base64.b64encode(b"not-random-munge-key-for-the-test" * 4).decode()
SSH = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
STACK = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: rev
    scheduler: {scheduler}
    ssh:
      public_keys: ["{ssh}"]
    pools:
      - name: gpu
        size: Standard_ND96isr_H100_v5
        nodes: 5
        island_max_nodes: 2
"""


@pytest.fixture(autouse=True)
def fixed_key(monkeypatch):
    """The munge key this test looks for (the real one is random per run)."""
    monkeypatch.setattr(cluster_key, "new_key", lambda nbytes=cluster_key.MUNGE_KEY_BYTES: MUNGE_KEY)


def _stack(tmp_path: Path, scheduler: str = "slurm") -> Path:
    path = tmp_path / "Pulumi.rev.yaml"
    path.write_text(STACK.format(scheduler=scheduler, ssh=SSH), encoding="utf-8")
    return path


def _registered_custom_data(scheduler: str = "slurm") -> dict[str, str]:
    """The real (unmasked) cloud-config of each VM and scale set, by Azure name, from the same program."""
    spec = ClusterSpec.model_validate(
        {
            "name": "rev",
            "location": "eastus",
            "scheduler": scheduler,
            "ssh": {"public_keys": [SSH]},
            "pools": [{"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 5, "island_max_nodes": 2}],
        }
    )
    capture = mockrun.run(lambda: Cluster("rev", spec).outputs)
    out = {}
    for resource in capture.resources:
        profile = resource.inputs.get("virtualMachineProfile", resource.inputs).get("osProfile") or {}
        if "customData" in profile:
            name = resource.inputs.get("vmScaleSetName") or resource.inputs.get("vmName")
            out[name] = gzip.decompress(base64.b64decode(profile["customData"])).decode()
    return out


def test_show_boot_writes_every_cloud_config_with_only_the_key_masked(tmp_path):
    boot = tmp_path / "boot"
    result = run_cli("plan", str(_stack(tmp_path)), "--json", "--show-boot", str(boot))
    assert result.exit_code == 0, result.stderr
    real = _registered_custom_data()
    assert sorted(real) == ["rev-gpu-ib0", "rev-gpu-ib1", "rev-gpu-ib2", "rev-login"]
    assert sorted(p.name for p in boot.iterdir()) == [f"{name}.yaml" for name in sorted(real)]
    assert "wrote 4 cloud-config(s)" in result.stderr
    for name, text in real.items():
        assert MUNGE_KEY in text  # the node does get the key ...
        shown = (boot / f"{name}.yaml").read_text()
        assert MUNGE_KEY not in shown  # ... the review does not
        files = {f["path"]: f for f in yaml.safe_load(shown)["write_files"]}
        assert files[bootstrap.MUNGE_KEY_B64_PATH]["content"] == MASK
        assert files[bootstrap.MUNGE_KEY_B64_PATH]["permissions"] == "0600"
        # everything else is exactly what the node runs: only the key's literal block differs
        assert text.count(MUNGE_KEY) == 1
        assert shown == text.replace(f"    content: |\n      {MUNGE_KEY}\n", f'    content: "{MASK}"\n')


def test_plan_json_shows_secret_custom_data_decoded_with_the_key_masked(tmp_path):
    result = run_cli("plan", str(_stack(tmp_path)), "--json")
    assert result.exit_code == 0, result.stderr
    assert MUNGE_KEY not in result.stdout and MUNGE_KEY not in result.stderr
    document = json.loads(result.stdout)
    shown = {}
    for resource in document["resources"]:
        profile = resource["inputs"].get("virtualMachineProfile", resource["inputs"]).get("osProfile") or {}
        if "customData" in profile:
            shown[resource["name"]] = profile["customData"]
    assert set(shown) == {"rev-gpu-ib0", "rev-gpu-ib1", "rev-gpu-ib2", "rev-login-vm"}
    for custom in shown.values():
        assert custom["secretsMasked"] == [bootstrap.MUNGE_KEY_B64_PATH]
        assert custom["cloudConfig"].startswith("#cloud-config\n")
        assert "azc-slurm" in custom["cloudConfig"]
    assert "AZC_ISLAND_KEY=gpu-i2" in shown["rev-gpu-ib2"]["cloudConfig"]
    assert "azc-slurm-controller.service" in shown["rev-login-vm"]["cloudConfig"]


def test_custom_data_without_a_secret_stays_as_registered_and_is_written_decoded(tmp_path):
    boot = tmp_path / "boot"
    result = run_cli("plan", str(_stack(tmp_path, "none")), "--json", "--show-boot", str(boot))
    assert result.exit_code == 0, result.stderr
    real = _registered_custom_data("none")
    document = json.loads(result.stdout)
    vmss = next(r for r in document["resources"] if r["name"] == "rev-gpu-ib0")
    data = vmss["inputs"]["virtualMachineProfile"]["osProfile"]["customData"]
    assert gzip.decompress(base64.b64decode(data)).decode() == real["rev-gpu-ib0"]
    for name, text in real.items():
        assert (boot / f"{name}.yaml").read_text() == text


def test_a_secret_outside_the_known_files_keeps_the_whole_custom_data_hidden(tmp_path):
    other = "an-api-token-nobody-may-see-0123456789"
    text = bootstrap.dump(
        "# test",
        [
            bootstrap.file_entry(bootstrap.MUNGE_KEY_B64_PATH, MUNGE_KEY + "\n", "0600"),
            bootstrap.file_entry("/etc/azcluster/token", other + "\n", "0600"),
        ],
        None,
    )
    data = bootstrap.encode_custom_data(text)
    shown, masked = masked_cloud_config(data, {MUNGE_KEY})
    assert MUNGE_KEY not in shown and other in shown and masked == [bootstrap.MUNGE_KEY_B64_PATH]
    with pytest.raises(ValueError, match="outside the files"):
        masked_cloud_config(data, {MUNGE_KEY, other})
    vm = mockrun.PlannedResource(
        "urn:x",
        "azure-native:compute:VirtualMachine",
        "vm",
        None,
        [],
        {"osProfile": {"customData": "[secret]"}},
        True,
        data,
    )
    result = plan.PlanResult(
        "s", "eastus", [], [vm], plan._empty_summary(), secrets=frozenset({MUNGE_KEY, other})
    )
    assert result.to_json()["resources"][0]["inputs"]["osProfile"]["customData"] == "[secret]"
    assert plan.write_boot_documents(result, tmp_path / "out") == ([], ["vm"])


def test_mask_files_masks_only_the_named_files_whatever_their_content():
    text = bootstrap.dump(
        "# t",
        [
            bootstrap.file_entry("/a", "line one\n\n  indented\n", "0644"),
            bootstrap.file_entry(bootstrap.MUNGE_KEY_B64_PATH, "k1\n\nk2\n", "0600"),
            bootstrap.file_entry("/b", "after\n", "0644"),
        ],
        [["systemctl", "daemon-reload"]],
    )
    masked, paths = mask_files(text)
    document = yaml.safe_load(masked)
    files = {f["path"]: f["content"] for f in document["write_files"]}
    assert files == {"/a": "line one\n\n  indented\n", bootstrap.MUNGE_KEY_B64_PATH: MASK, "/b": "after\n"}
    assert document["runcmd"] == [["systemctl", "daemon-reload"]]
    assert paths == [bootstrap.MUNGE_KEY_B64_PATH]


def test_show_boot_into_a_file_is_a_clear_usage_error(tmp_path):
    target = tmp_path / "not-a-dir"
    target.write_text("x")
    result = run_cli("plan", str(_stack(tmp_path)), "--show-boot", str(target))
    assert result.exit_code == 2
    assert "cannot write the cloud-configs" in result.stderr and "Traceback" not in result.stderr


TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from("\n\t"))


@given(before=TEXT, secret=TEXT, after=TEXT)
def test_masking_keeps_every_other_file_exactly_and_hides_the_secret_file_whatever_they_hold(
    before, secret, after
):
    files = [
        bootstrap.file_entry("/a", before, "0644"),
        bootstrap.file_entry(bootstrap.MUNGE_KEY_B64_PATH, secret, "0600"),
        bootstrap.file_entry("/b", after, "0644"),
    ]
    masked, paths = mask_files(bootstrap.dump("# t", files, [["true"]]))
    document = yaml.safe_load(masked)
    assert {f["path"]: f["content"] for f in document["write_files"]} == {
        "/a": before,
        bootstrap.MUNGE_KEY_B64_PATH: MASK,
        "/b": after,
    }
    assert document["runcmd"] == [["true"]] and paths == [bootstrap.MUNGE_KEY_B64_PATH]
