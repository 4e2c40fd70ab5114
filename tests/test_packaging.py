"""The wheel and sdist are complete: built from the checkout, installed into a fresh virtual environment
outside it, `azcluster validate` and `azcluster plan` work on a stack file there, and nothing installs as
a top-level `components` package that could shadow a Pulumi project's own.

Third-party dependencies come from this environment (a .pth file), so the test never reaches the network;
azcluster itself comes only from the wheel (the test checks where it was imported from)."""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist, then the wheel built *from that sdist* (python -m build's default), so both are checked."""
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src") / "azcluster"
    # Build from a clean copy: no .venv, no build/ or egg-info left over from an editable install.
    ignore = shutil.ignore_patterns(".venv", ".git", "*.egg-info", "build", "dist", "__pycache__", ".*cache")
    shutil.copytree(REPO, src, ignore=ignore)
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def wheel(dist) -> Path:
    (found,) = dist.glob("azcluster-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A fresh venv outside the checkout with only the wheel installed (dependencies borrowed)."""
    root = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # A .pth line adds our site-packages as a plain directory: its own .pth files (the checkout's editable
    # install) are not processed, so `azcluster` can only come from the wheel.
    borrowed = [p for p in sys.path if p.endswith("site-packages") and not p.startswith(str(REPO))]
    borrowed.append(sysconfig.get_paths()["purelib"])
    (Path(purelib) / "00-borrowed-deps.pth").write_text("\n".join(dict.fromkeys(borrowed)) + "\n")
    install = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return root


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_no_top_level_components_package(wheel):
    names = wheel_names(wheel)
    assert not any(name.startswith("components/") for name in names)
    top_levels = {name.split("/")[0] for name in names if not name.startswith("azcluster-")}
    assert top_levels == {"azcluster"}


def test_every_package_and_data_file_is_in_the_wheel(wheel):
    names = wheel_names(wheel)
    for folder, prefix in ((REPO / "azcluster", "azcluster"), (REPO / "components", "azcluster/components")):
        for path in folder.rglob("*"):
            if path.is_dir() or "__pycache__" in path.parts:
                continue
            installed = f"{prefix}/{path.relative_to(folder).as_posix()}"
            assert installed in names, f"{path.relative_to(REPO)} is missing from the wheel (pyproject.toml)"


def test_metadata_describes_the_project(wheel):
    with zipfile.ZipFile(wheel) as zf:
        (meta_name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(zf.read(meta_name))
        license_files = [n for n in zf.namelist() if "/licenses/" in n]
    import azcluster

    assert meta["Version"] == azcluster.__version__
    assert meta["Summary"] and "Azure" in meta["Summary"]
    assert meta["License-Expression"] == "MIT"
    assert license_files, "the LICENSE file travels with the wheel"
    assert meta["Requires-Python"] == ">=3.10"
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in meta.get_all("Classifier"))
    assert {u.split(",")[0] for u in meta.get_all("Project-URL")} >= {"Homepage", "Source", "Issues"}
    assert "azcluster" in meta.get_payload()  # README as the long description


def test_sdist_carries_the_sources_the_wheel_is_built_from(dist):
    import tarfile

    (sdist,) = dist.glob("azcluster-*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "LICENSE", "components/catalog/sizes.yaml"} <= names


def run_installed(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HOME"] = str(cwd)
    return subprocess.run(
        [str(venv / "bin" / "azcluster"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_installed_cli_validates_and_plans_a_stack_outside_the_checkout(venv, tmp_path):
    python = venv / "bin" / "python"
    where = subprocess.run(
        [
            python,
            "-c",
            "import azcluster.components as c, importlib.util as u; "
            "print(c.__file__); print(u.find_spec('components'))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert where[0].startswith(str(venv)), where
    assert where[1] == "None"

    stacks = tmp_path / "stacks"
    stacks.mkdir()
    shutil.copy(REPO / "stacks" / "Pulumi.example.yaml", stacks / "Pulumi.example.yaml")

    version = run_installed(venv, "--version", cwd=tmp_path)
    import azcluster

    assert version.returncode == 0 and version.stdout.strip() == f"azcluster {azcluster.__version__}"

    validate = run_installed(venv, "validate", "example", "--json", cwd=tmp_path)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert json.loads(validate.stdout)["ok"] is True

    plan = run_installed(venv, "plan", "example", "--json", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr[-2000:]
    document = json.loads(plan.stdout)
    assert document["summary"]["nodes"] == 2
    # Custom data is rendered from the bootstrap scripts and units that only the wheel can supply here.
    scale_set = next(r for r in document["resources"] if r["type"].endswith("VirtualMachineScaleSet"))
    assert scale_set["inputs"]["virtualMachineProfile"]["osProfile"]["customData"]
