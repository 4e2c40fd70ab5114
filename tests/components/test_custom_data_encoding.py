"""Custom data bytes: `PrefixGzip` (a pool's shared prefix compressed once) gives exactly what gzip -9 of
the whole document gives, the encoding Azure has always been sent (`gzip.compress(data, 9, mtime=0)`)."""

from __future__ import annotations

import base64
import gzip
import random
import zlib
from pathlib import Path

import pytest

from azcluster import plan as planner
from azcluster import stackfile
from azcluster.components import bootstrap, cluster_key
from azcluster.components.bootstrap.document import PrefixGzip, gzip_document, shared_prefix
from azcluster.components.bootstrap.review import decode_custom_data

from .test_bootstrap_roles import STORAGE, _spec

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def _old(data: bytes) -> bytes:
    """The encoding before PrefixGzip, kept here only: gzip.compress of the whole document."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def _documents() -> list[bytes]:
    """Real GPU-node cloud-configs (a Slurm pool's islands), the texts PrefixGzip is for."""
    boot = bootstrap.PoolBoot.gather(_spec(), "h100", STORAGE, bootstrap.SlurmBoot("k" * 24, "z.internal"))
    return [boot.cloud_config(island).encode() for island in range(boot.islands)]


def test_gzip_document_is_gzip_compress_of_the_whole():
    for data in (b"", b"x", *_documents()):
        assert gzip_document(data) == _old(data)


def test_prefix_gzip_equals_gzip_of_the_whole_over_many_splits_and_edits():
    rng = random.Random(17)
    documents = _documents()
    checked = 0
    for round_ in range(160):
        base = rng.choice(documents)
        # an edit anywhere (what another piece might add or change per island), of any length
        at = rng.randrange(len(base) + 1)
        edited = base[:at] + rng.randbytes(rng.randrange(0, 40)).hex().encode() + base[at:]
        # a prefix of any length: empty, tiny, around deflate's 32 KiB window and block sizes, whole
        cut = rng.choice([0, 1, 258, 262, 32768, 32769, 65536, len(edited), rng.randrange(len(edited) + 1)])
        prefix = edited[: min(cut, len(edited))]
        encoder = PrefixGzip(prefix)
        assert encoder.compress(edited) == _old(edited), (round_, at, cut)
        # the same encoder again (its state is copied, never consumed), and another document with it
        assert encoder.compress(edited) == _old(edited)
        other = prefix + rng.choice(documents)[len(prefix) :]
        assert encoder.compress(other) == _old(other)
        checked += 3
    assert checked == 480


def test_prefix_gzip_on_random_bytes_and_text():
    rng = random.Random(1017)
    for size in (0, 1, 2, 100, 5000, 40000, 140000):
        for kind in ("bytes", "text"):
            data = (
                rng.randbytes(size)
                if kind == "bytes"
                else "".join(
                    rng.choice(["azc-", "slurm ", "\n", "    ", "0123", "x"]) for _ in range(size // 3)
                ).encode()
            )
            for cut in {0, len(data) // 3, len(data)}:
                assert PrefixGzip(data[:cut]).compress(data) == _old(data), (size, kind, cut)


def test_prefix_gzip_falls_back_when_the_document_does_not_start_with_the_prefix():
    first, *_ = _documents()
    encoder = PrefixGzip(first[:5000])
    other = b"#different start\n" + first[17:]
    assert encoder.compress(other) == _old(other)


def test_the_gzip_header_and_trailer_are_the_old_ones():
    data = _documents()[1]
    packed = PrefixGzip(data[: len(data) - 700]).compress(data)
    # ID1 ID2, deflate, no flags, mtime 0, XFL 2 (level 9), then zlib's OS byte: as gzip.compress wrote
    assert packed[:10] == _old(data)[:10] and packed[:9] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02"
    crc, size = int.from_bytes(packed[-8:-4], "little"), int.from_bytes(packed[-4:], "little")
    assert (crc, size) == (zlib.crc32(data), len(data))
    assert gzip.decompress(packed) == data


def test_shared_prefix():
    assert shared_prefix(b"", b"abc") == b""
    assert shared_prefix(b"abc", b"abc") == b"abc"
    assert shared_prefix(b"abcd", b"abXd") == b"ab"
    assert shared_prefix(b"abc", b"abcdef") == b"abc"
    rng = random.Random(5)
    for _ in range(200):
        common = rng.randbytes(rng.randrange(0, 300))
        a = common + bytes([1]) + rng.randbytes(rng.randrange(0, 30))
        b = common + bytes([2]) + rng.randbytes(rng.randrange(0, 30))
        assert shared_prefix(a, b) == common


def test_a_pools_islands_share_all_but_their_node_env():
    documents = _documents()
    shared = shared_prefix(documents[0], documents[-1])
    # the first byte that differs is the island's number in node.env, the last file: what each scale set
    # compresses on its own is node.env's tail and runcmd
    assert shared.endswith(b"\n      AZC_ISLAND=")
    assert len(documents[0]) - len(shared) < 2000 < len(shared)


@pytest.fixture
def fixed_munge_key(monkeypatch):
    """A fixed cluster key, so two plans of a stack register the same custom data."""
    key = base64.b64encode(bytes(range(128))).decode()
    monkeypatch.setattr(cluster_key, "new_key", lambda nbytes=cluster_key.MUNGE_KEY_BYTES: key)
    return key


def test_the_h200_1024_plan_registers_gzip_of_each_sets_whole_document(fixed_munge_key):
    """The plan of the 1024-node H200 stack: each scale set's custom data is the old encoding (gzip -9 of
    the whole document, base64) of its document; the documents differ only in their island's node.env."""
    result = planner.plan_stack(stackfile.load_stack(str(STACKS / "Pulumi.h200-1024.yaml")))
    sets = [r for r in result.resources if r.type.endswith("VirtualMachineScaleSet")]
    assert [r.inputs["vmScaleSetName"] for r in sets] == [f"h200-1024-train-ib{i}" for i in range(4)]
    texts = []
    for resource in sets:
        assert resource.custom_data is not None
        text = decode_custom_data(resource.custom_data)
        assert fixed_munge_key in text  # the custom data as Azure gets it, key and all
        assert resource.custom_data == base64.b64encode(_old(text.encode())).decode()
        texts.append(text)
    marker = '  - path: "/etc/azcluster/node.env"'
    for island, text in enumerate(texts):
        before, node_env = text.split(marker)
        assert f"\n      AZC_ISLAND={island}\n      AZC_ISLAND_KEY=train-i{island}\n" in node_env
        assert before == texts[0].split(marker)[0]
