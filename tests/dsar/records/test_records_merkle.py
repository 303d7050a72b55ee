"""RFC 9162 Merkle tree: known vectors and properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsar.records import merkle

# Test vectors from transparency-dev/merkle, proof/verify_test.go (commit 02194e9a), which
# carries over the Certificate Transparency test data of google/certificate-transparency
# (merkle_tree_test). Inclusion vectors there use 1-based leaf numbers: `{1, 8, ...}` is leaf 0.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [  # root of the first n leaves, n = 1..8
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
CT_INCLUSION = [  # (0-based index, tree size, audit path)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _h(items: list[str]) -> list[bytes]:
    return [bytes.fromhex(x) for x in items]


def _flip(data: bytes, bit: int = 3) -> bytes:
    return bytes([data[0] ^ (1 << bit)]) + data[1:]


# --- known vectors ---------------------------------------------------------------------------


def test_empty_tree_root() -> None:
    assert merkle.EMPTY_ROOT.hex() == CT_EMPTY_ROOT
    assert merkle.root([]) == merkle.root_from_hashes([]) == merkle.EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_ct_roots(size: int) -> None:
    leaves = CT_LEAVES[:size]
    assert merkle.root(leaves).hex() == CT_ROOTS[size - 1]
    assert (
        merkle.root_from_hashes([merkle.leaf_hash(d) for d in leaves]).hex() == (CT_ROOTS[size - 1])
    )


def test_leaf_and_node_prefixes() -> None:
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_ct_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    leaves = CT_LEAVES[:size]
    proof = merkle.inclusion_proof(index, leaves)
    assert proof == _h(path)
    root = bytes.fromhex(CT_ROOTS[size - 1])
    leaf = merkle.leaf_hash(CT_LEAVES[index])
    assert merkle.verify_inclusion(index, size, leaf, proof, root)


def _corrupt_inclusion(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):
    """The probes of transparency-dev/merkle corruptInclusionProof; none may verify."""
    probes = [
        (index - 1, size, root, leaf, proof),
        (index + 1, size, root, leaf, proof),
        (index ^ 2, size, root, leaf, proof),
        (index, size * 2, root, leaf, proof),
        (index, size // 2, root, leaf, proof),
        (index, size, root, b"WrongLeaf", proof),
        (index, size, merkle.EMPTY_ROOT, leaf, proof),
        (index, size, SOME_HASH, leaf, proof),
        (index, size, root, leaf, [*proof, b""]),
        (index, size, root, leaf, [*proof, root]),
        (index, size, root, leaf, [b"", *proof]),
        (index, size, root, leaf, [root, *proof]),
    ]
    for i in range(len(proof)):
        probes.append((index, size, root, leaf, [*proof[:i], _flip(proof[i]), *proof[i + 1 :]]))
    if proof:
        probes.append((index, size, root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]]))
    return probes


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_ct_inclusion_corruptions_fail(index: int, size: int, path: list[str]) -> None:
    root = bytes.fromhex(CT_ROOTS[size - 1])
    leaf = merkle.leaf_hash(CT_LEAVES[index])
    for probe in _corrupt_inclusion(index, size, _h(path), root, leaf):
        assert not merkle.verify_inclusion(*probe), probe


@pytest.mark.parametrize(("old", "new", "path"), CT_CONSISTENCY)
def test_ct_consistency_proofs(old: int, new: int, path: list[str]) -> None:
    proof = merkle.consistency_proof(old, CT_LEAVES[:new])
    assert proof == _h(path)
    old_root, new_root = bytes.fromhex(CT_ROOTS[old - 1]), bytes.fromhex(CT_ROOTS[new - 1])
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)


@pytest.mark.parametrize(("old", "new", "path"), [v for v in CT_CONSISTENCY if v[2]])
def test_ct_consistency_corruptions_fail(old: int, new: int, path: list[str]) -> None:
    r1, r2, proof = bytes.fromhex(CT_ROOTS[old - 1]), bytes.fromhex(CT_ROOTS[new - 1]), _h(path)
    probes = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        probes.append((old, new, r1, r2, [*proof[:i], _flip(proof[i], 4), *proof[i + 1 :]]))
    for probe in probes:
        assert not merkle.verify_consistency(*probe), probe


def test_consistency_edge_cases() -> None:
    r1, r2 = SOME_HASH, merkle.leaf_hash(b"x")
    empty = merkle.EMPTY_ROOT
    assert merkle.verify_consistency(0, 0, empty, empty, [])
    assert merkle.verify_consistency(0, 5, empty, r2, [])
    assert merkle.verify_consistency(1, 1, r2, r2, [])
    assert not merkle.verify_consistency(0, 5, r1, r2, [])  # an empty tree has a known root
    assert not merkle.verify_consistency(1, 1, r1, r2, [])
    assert not merkle.verify_consistency(1, 0, r1, r2, [])
    assert not merkle.verify_consistency(2, 1, r1, r2, [])
    assert not merkle.verify_consistency(1, 2, r1, r2, [])
    assert not merkle.verify_consistency(0, 1, empty, empty, [empty])
    assert not merkle.verify_consistency(1, 1, empty, empty, [empty])


def test_inclusion_edge_cases() -> None:
    leaf = merkle.leaf_hash(b"data")
    assert merkle.verify_inclusion(0, 1, leaf, [], leaf)
    assert not merkle.verify_inclusion(0, 1, leaf, [], b"")
    assert not merkle.verify_inclusion(0, 1, b"", [], leaf)
    for index, size in [(0, 0), (1, 0), (2, 1), (-1, 1)]:
        assert not merkle.verify_inclusion(index, size, SOME_HASH, [], merkle.EMPTY_ROOT)


def test_builders_reject_bad_arguments() -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_proof(3, CT_LEAVES[:3])
    with pytest.raises(ValueError):
        merkle.inclusion_proof(-1, CT_LEAVES[:3])
    with pytest.raises(ValueError):
        merkle.consistency_proof(4, CT_LEAVES[:3])
    with pytest.raises(ValueError):
        merkle.root_from_hashes([b"short"])


# --- properties --------------------------------------------------------------------------------

MAX = 300
LEAVES = [i.to_bytes(4, "big") for i in range(MAX)]
HASHES = [merkle.leaf_hash(d) for d in LEAVES]
ROOTS = [merkle.root_from_hashes(HASHES[:n]) for n in range(MAX + 1)]


def test_prefix_roots_match_leaf_data_form() -> None:
    for n in (0, 1, 2, 3, 7, 64, 65, 299, 300):
        assert merkle.root(LEAVES[:n]) == ROOTS[n]


@given(data=st.data(), size=st.integers(1, MAX))
@settings(max_examples=400, deadline=None)
def test_inclusion_proofs_verify_and_bind(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = merkle.inclusion_proof_from_hashes(index, HASHES[:size])
    assert proof == merkle.inclusion_proof(index, LEAVES[:size])
    assert merkle.verify_inclusion(index, size, HASHES[index], proof, ROOTS[size])
    assert merkle.root_from_inclusion_proof(index, size, HASHES[index], proof) == ROOTS[size]

    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other")
    if size > 1:
        assert not merkle.verify_inclusion(index, size, HASHES[other], proof, ROOTS[size])
        assert not merkle.verify_inclusion(other, size, HASHES[index], proof, ROOTS[size])
    assert not merkle.verify_inclusion(index, size, merkle.leaf_hash(b"x"), proof, ROOTS[size])
    assert not merkle.verify_inclusion(index, size, HASHES[index], proof, ROOTS[size - 1])
    assert not merkle.verify_inclusion(index, size, HASHES[index], proof, _flip(ROOTS[size]))
    # Note: the tree size is not bound by the path alone (leaf 0 of 3 and of 4 share a path
    # shape); it is bound by the signed checkpoint that carries both size and root.


def test_inclusion_every_size_every_edge_index() -> None:
    for size in range(1, MAX + 1):
        for index in {0, size // 2, size - 1}:
            proof = merkle.inclusion_proof_from_hashes(index, HASHES[:size])
            assert merkle.verify_inclusion(index, size, HASHES[index], proof, ROOTS[size])


def _forked(size: int, at: int) -> list[bytes]:
    forked = list(HASHES[:size])
    forked[at] = merkle.leaf_hash(b"forged")
    return forked


@given(data=st.data(), new=st.integers(1, MAX))
@settings(max_examples=400, deadline=None)
def test_consistency_proofs_verify_and_detect_forks(data: st.DataObject, new: int) -> None:
    old = data.draw(st.integers(1, new), label="old")
    proof = merkle.consistency_proof_from_hashes(old, HASHES[:new])
    assert merkle.verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)

    # A log that rewrote one of the first `old` leaves cannot prove it extends the old tree.
    at = data.draw(st.integers(0, old - 1), label="forked leaf")
    forked = _forked(new, at)
    forked_root = merkle.root_from_hashes(forked)
    forked_proof = merkle.consistency_proof_from_hashes(old, forked)
    assert not merkle.verify_consistency(old, new, ROOTS[old], forked_root, forked_proof)
    assert not merkle.verify_consistency(old, new, ROOTS[old], forked_root, proof)
    # Nor does a proof for the honest tree vouch for a different old size.
    if old < new:
        assert not merkle.verify_consistency(old, new, ROOTS[old], ROOTS[new], proof[:-1])
        assert not merkle.verify_consistency(old, new, ROOTS[new], ROOTS[old], proof)


def test_consistency_every_pair_small() -> None:
    for new in range(1, 65):
        for old in range(0, new + 1):
            proof = merkle.consistency_proof_from_hashes(old, HASHES[:new])
            assert merkle.verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)
            if old:
                forked_root = merkle.root_from_hashes(_forked(new, old - 1))
                assert not merkle.verify_consistency(old, new, ROOTS[old], forked_root, proof)


@pytest.mark.slow
def test_consistency_every_pair_up_to_max() -> None:
    for new in range(1, MAX + 1):
        for old in range(1, new + 1):
            proof = merkle.consistency_proof_from_hashes(old, HASHES[:new])
            assert merkle.verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


def test_large_tree_is_fast_enough() -> None:
    hashes = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(20_000)]
    root = merkle.root_from_hashes(hashes)
    proof = merkle.inclusion_proof_from_hashes(12_345, hashes)
    assert merkle.verify_inclusion(12_345, 20_000, hashes[12_345], proof, root)
    old_root = merkle.root_from_hashes(hashes[:15_001])
    cproof = merkle.consistency_proof_from_hashes(15_001, hashes)
    assert merkle.verify_consistency(15_001, 20_000, old_root, root, cproof)


# --- frontiers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(0, 9))
def test_ct_roots_from_frontiers(size: int) -> None:
    frontier = merkle.extend_frontier([], 0, [merkle.leaf_hash(d) for d in CT_LEAVES[:size]])
    assert len(frontier) == bin(size).count("1")
    expected = CT_ROOTS[size - 1] if size else CT_EMPTY_ROOT
    assert merkle.root_from_frontier(frontier).hex() == expected


@given(data=st.data(), size=st.integers(0, MAX))
@settings(max_examples=200)
def test_a_frontier_extended_in_any_steps_gives_the_tree_root(data: st.DataObject,
                                                               size: int) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, size), max_size=6)))
    frontier: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, size], strict=True):
        frontier = merkle.extend_frontier(frontier, start, HASHES[start:end])
        assert merkle.root_from_frontier(frontier) == ROOTS[end]


def test_a_frontier_that_does_not_fit_its_size_is_refused() -> None:
    one = merkle.leaf_hash(b"x")
    with pytest.raises(ValueError, match="does not fit"):
        merkle.extend_frontier([one], 3, [one])  # 3 leaves make two subtrees (2 + 1)
    with pytest.raises(ValueError, match="does not fit"):
        merkle.extend_frontier([], 1, [one])
    with pytest.raises(ValueError, match="32 bytes"):
        merkle.extend_frontier([], 0, [b"short"])
