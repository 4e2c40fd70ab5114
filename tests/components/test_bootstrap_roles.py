"""The bootstrap split by role: each role's table of pieces, the units a document starts are the units it
writes (a timer with its service), islands of a pool differ only in their number, and the shared data sits
below both bootstrap and elastic (no import circle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from azcluster.components import bootstrap
from azcluster.components.bootstrap.document import Piece, assemble
from azcluster.components.elastic import render_config
from azcluster.components.spec import ClusterSpec
from tests.checkout import python_ast, tracked

from .test_bootstrap_render import _files, _load

COMPONENTS = Path(__file__).resolve().parents[2] / "components"
H100 = "Standard_ND96isr_H100_v5"
KEY = "a2V5"
ZONE = "llm.azcluster.internal"
STORAGE = bootstrap.StorageValues(
    "lustre-mgs.llm.azcluster.internal",
    "llmdata",
    "client-id",
    home_source="acct.file.core.windows.net:/a/home",
)


def _spec(**fields) -> ClusterSpec:
    data = {
        "name": "llm",
        "location": "eastus",
        "pools": [{"name": "h100", "size": H100, "nodes": 20, "island_max_nodes": 7}],
        "storage": {"blob": {"enabled": True, "containers": ["datasets"]}, "home": {"enabled": True}},
    }
    data.update(fields)
    return ClusterSpec.model_validate(data)


def _login(scheduler: str) -> bootstrap.LoginBoot:
    spec = _spec(scheduler=scheduler, elastic={"idle_minutes": 30})
    return bootstrap.LoginBoot.for_cluster(
        spec,
        STORAGE,
        power_subscription="00000000-0000-0000-0000-000000000000",
        power_client_id="power-client",
        munge_key=KEY if scheduler == "slurm" else None,
        dns_zone=ZONE,
    )


def _documents() -> dict[str, str]:
    docs = {f"login ({s})": _login(s).cloud_config() for s in ("slurm", "none")}
    for scheduler in ("slurm", "none"):
        spec = _spec(scheduler=scheduler, elastic={"idle_minutes": 30})
        slurm = bootstrap.SlurmBoot(KEY, ZONE) if scheduler == "slurm" else None
        docs[f"gpu ({scheduler})"] = bootstrap.PoolBoot.gather(spec, "h100", STORAGE, slurm).cloud_config(1)
    return docs


DOCUMENTS = _documents()


def _started(document: dict) -> list[str]:
    steps = [step for step in document["runcmd"] if step[:2] == ["systemctl", "enable"]]
    assert len(steps) == 1
    return steps[0][2:]


@pytest.mark.parametrize("role", sorted(DOCUMENTS))
def test_every_unit_a_cloud_config_starts_is_written_into_it_and_a_timer_with_its_service(role):
    document = _load(DOCUMENTS[role])
    files = _files(document)
    started = _started(document)
    start = next(step for step in document["runcmd"] if step[:2] == ["systemctl", "start"])
    assert start[3:] == started  # `start --no-block` the same units it enables
    for unit in started:
        path = f"{bootstrap.UNIT_DIR}/{unit}"
        assert path in files, f"{role} starts {unit} but does not write it"
        if unit.endswith(".timer"):
            service = bootstrap.document.timer_service(unit, files[path]["content"])
            assert f"{bootstrap.UNIT_DIR}/{service}" in files, f"{role}: {unit} runs {service}, not written"
    # the service a unit runs is written too
    for path, entry in files.items():
        if path.startswith(bootstrap.UNIT_DIR) and path.endswith(".service"):
            for line in entry["content"].splitlines():
                if line.startswith("ExecStart="):
                    for word in line.split("=", 1)[1].split():
                        if word.startswith(bootstrap.INSTALL_DIR):
                            assert word in files, f"{role}: {path} runs {word}, not written"


def test_the_controller_writes_the_reapers_service_and_starts_only_its_timer():
    files = _files(_load(DOCUMENTS["login (slurm)"]))
    reaper = files[f"{bootstrap.UNIT_DIR}/azc-slurm-reaper.service"]
    assert reaper["content"] == bootstrap.read_script("azc-slurm-reaper.service")
    started = _started(_load(DOCUMENTS["login (slurm)"]))
    assert "azc-slurm-reaper.timer" in started and "azc-slurm-reaper.service" not in started


def test_assemble_refuses_a_document_that_starts_a_timer_without_its_service():
    timer_only = Piece("reaper", units=("azc-slurm-reaper.timer",), start=("azc-slurm-reaper.timer",))
    with pytest.raises(ValueError, match=r"azc-slurm-reaper\.timer.*azc-slurm-reaper\.service"):
        assemble("# test", [timer_only])
    with pytest.raises(ValueError, match="starts azc-prepare.service but does not write"):
        assemble("# test", [Piece("prepare", start=("azc-prepare.service",))])


def test_each_role_lists_its_pieces_in_one_table():
    assert [p.name for p in _login("slurm").pieces()] == [
        "login",
        "mounts",
        "slurm",
        "hostfiles",
        "elastic",
        "users",
    ]
    assert [p.name for p in _login("none").pieces()] == ["login", "mounts", "hostfiles", "elastic", "users"]
    boot = bootstrap.PoolBoot.gather(_spec(), "h100", STORAGE, bootstrap.SlurmBoot(KEY, ZONE))
    assert [p.name for p in boot.pieces(0)] == ["node", "health", "mounts", "slurm", "users"]
    assert [p.name for p in bootstrap.PoolBoot.gather(_spec(scheduler="none"), "h100").pieces(0)] == [
        "node",
        "health",
        "mounts",
        "users",
    ]
    no_home = _spec(storage={"home": {"enabled": False}})
    assert "users" not in [p.name for p in bootstrap.PoolBoot.gather(no_home, "h100").pieces(0)]


def test_the_login_node_gets_the_power_config_the_elastic_module_renders():
    files = _files(_load(DOCUMENTS["login (none)"]))
    expected = render_config(
        _spec(scheduler="none", elastic={"idle_minutes": 30}),
        "0" * 8 + "-0000-0000-0000-" + "0" * 12,
        "power-client",
    )
    assert files["/etc/azcluster/elastic.json"]["content"] == expected


def test_the_islands_of_a_pool_differ_only_in_their_number():
    boot = bootstrap.PoolBoot.gather(_spec(), "h100", STORAGE, bootstrap.SlurmBoot(KEY, ZONE))
    first = boot.cloud_config(0).splitlines()
    third = boot.cloud_config(2).splitlines()
    assert len(first) == len(third)
    changed = [(a, b) for a, b in zip(first, third, strict=True) if a != b]
    assert changed == [
        ("      AZC_ISLAND=0", "      AZC_ISLAND=2"),
        ("      AZC_ISLAND_KEY=h100-i0", "      AZC_ISLAND_KEY=h100-i2"),
    ]
    assert first[1] == f"# azcluster node bootstrap: cluster llm, pool h100 ({H100}, profile nd-h100-v5)"
    # node.env, where the island is, is the last file: the islands share everything before it
    # (document.py: PrefixGzip compresses that once per pool).
    paths = [entry["path"] for entry in _load(boot.cloud_config(2))["write_files"]]
    assert paths[-1] == bootstrap.NODE_ENV_PATH and paths.count(bootstrap.NODE_ENV_PATH) == 1
    shared = first.index(f'  - path: "{bootstrap.NODE_ENV_PATH}"')
    assert first[:shared] == third[:shared] and len(first) - shared < 60


def _imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (function-level imports included), made absolute."""
    package = ".".join(path.relative_to(COMPONENTS.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(python_ast(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_shared_data_sits_below_bootstrap_and_elastic_with_no_import_back():
    # bootstrap -> elastic -> topology, one way: neither elastic nor topology imports bootstrap.
    for name in ("elastic.py", "topology.py"):
        imported = _imported_modules(COMPONENTS / name)
        assert not [m for m in imported if m.startswith("components.bootstrap")], (name, imported)
    assert not [m for m in _imported_modules(COMPONENTS / "topology.py") if "elastic" in m]
    # inside bootstrap, the pieces never import the package's façade (__init__) back
    for path in (COMPONENTS / "bootstrap").glob("*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(python_ast(path)):
            if isinstance(node, ast.ImportFrom):
                assert not (node.level == 1 and node.module is None), f"{path.name}: from . import ..."
                assert node.module != "azcluster.components.bootstrap", path.name


STACKS = COMPONENTS.parent / "stacks"


@pytest.mark.parametrize("stack", [p.name for p in tracked("stacks", "Pulumi.*.yaml")])  # a clone's stacks
def test_the_scale_sets_of_each_shipped_stack_differ_only_in_their_island(stack):
    """Every scale set's custom data, as the stack program registers it, is its pool's one document with
    the island's number in two places (AZC_ISLAND, AZC_ISLAND_KEY: node.env, its last file); each starts
    what it writes."""
    import base64
    import gzip

    from azcluster import mockrun, stackfile
    from azcluster.components.cluster import Cluster

    spec = stackfile.load_stack(str(STACKS / stack)).spec
    capture = mockrun.run(lambda: Cluster(spec.name, spec).outputs)
    by_pool: dict[str, dict[int, list[str]]] = {}
    for resource in capture.of_type("compute:VirtualMachineScaleSet"):
        data = resource.inputs["virtualMachineProfile"]["osProfile"]["customData"]
        text = gzip.decompress(base64.b64decode(data)).decode()
        tags = resource.inputs["tags"]
        pool, island = tags["azcluster-pool"], int(tags["azcluster-island"])
        assert f"AZC_ISLAND_KEY={bootstrap.island_key(pool, island)}\n" in text
        _started(_load(text))  # parses; assemble() already refused unwritten units
        by_pool.setdefault(pool, {})[island] = text.splitlines()
    assert by_pool, stack
    for pool, islands in by_pool.items():
        first = islands[min(islands)]
        for island, lines in islands.items():
            assert len(lines) == len(first)
            changed = {a for a, b in zip(first, lines, strict=True) if a != b}
            assert len(changed) == (0 if island == min(islands) else 2), (pool, island, changed)
