"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing and proofs, with SHA-256.

Definitions (RFC 9162 §2.1.1):

* the hash of an empty tree is ``SHA-256("")``;
* a leaf hash is ``SHA-256(0x00 || leaf data)``;
* an interior node hash is ``SHA-256(0x01 || left || right)``;
* the Merkle Tree Hash (MTH) of ``n > 1`` leaves splits them at ``k``, the largest power of
  two smaller than ``n``: ``MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n]))``.

Each operation comes in two forms: one over leaf *data* (``root``, ``inclusion_proof``,
``consistency_proof``) and one over precomputed *leaf hashes* (``root_from_hashes``, …),
which is what the ledger stores. Building runs in O(n) hashing per call with no recursion
over leaves; verifying runs in O(log n) and needs only hashes.

A *frontier* (the roots of the perfect subtrees that make up a tree, largest first: one per
bit set in its size) is all that is needed to extend a tree by more leaves and to compute its
root, in O(new leaves + log n): :func:`extend_frontier`, :func:`root_from_frontier`.

Verifiers return ``bool`` and never raise on malformed input: a wrong-length hash, an
index out of range or a proof of the wrong length simply does not verify.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_proof",
    "consistency_proof_from_hashes",
    "extend_frontier",
    "inclusion_proof",
    "inclusion_proof_from_hashes",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_frontier",
    "root_from_hashes",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every hash in the tree."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the tree with no leaves: ``SHA-256("")``."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """The RFC 9162 hash of one leaf: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH of the leaves whose hashes are ``hashes[lo:hi]``, computed level by level.

    Pairing neighbours and carrying an odd last node up unchanged gives exactly the RFC
    9162 split-at-largest-power-of-two tree.
    """
    if hi <= lo:
        return EMPTY_ROOT
    level = list(hashes[lo:hi])
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _check_hashes(hashes: Sequence[bytes]) -> None:
    for h in hashes:
        if len(h) != HASH_SIZE:
            raise ValueError(f"leaf hashes must be {HASH_SIZE} bytes, got {len(h)}")


def root_from_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of a tree given its leaf hashes in order.

    Raises ``ValueError`` if any hash is not 32 bytes.
    """
    _check_hashes(leaf_hashes)
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def extend_frontier(frontier: Sequence[bytes], size: int,
                    leaf_hashes: Iterable[bytes]) -> list[bytes]:
    """The frontier of the tree of ``size`` leaves whose frontier is ``frontier``, extended by
    ``leaf_hashes``. Raises ``ValueError`` if the frontier does not fit the size (one hash per
    bit set in ``size``) or a hash is not 32 bytes."""
    if size < 0 or len(frontier) != bin(size).count("1"):
        raise ValueError(f"a frontier of {len(frontier)} hashes does not fit {size} leaves")
    peaks = list(frontier)
    _check_hashes(peaks)
    for leaf in leaf_hashes:
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"leaf hashes must be {HASH_SIZE} bytes, got {len(leaf)}")
        node, carry = leaf, size
        while carry & 1:  # two subtrees of equal size merge, as in binary addition
            node = node_hash(peaks.pop(), node)
            carry >>= 1
        peaks.append(node)
        size += 1
    return peaks


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of the tree whose frontier is ``frontier``: the subtree roots
    joined from the right, which is RFC 9162's split at the largest power of two."""
    if not frontier:
        return EMPTY_ROOT
    node = frontier[-1]
    for peak in reversed(frontier[:-1]):
        node = node_hash(peak, node)
    return node


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash (RFC 9162 §2.1.1) of the given leaf data, in order."""
    return _mth([leaf_hash(d) for d in leaves], 0, len(leaves))


def inclusion_proof_from_hashes(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path (RFC 9162 §2.1.3.1) for leaf ``index`` in the tree of ``leaf_hashes``.

    The path is ordered from the leaf's sibling up to the child of the root. Raises
    ``ValueError`` unless ``0 <= index < len(leaf_hashes)``.
    """
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    _check_hashes(leaf_hashes)
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            path.append(_mth(leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            path.append(_mth(leaf_hashes, lo, lo + k))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path for leaf ``index`` in the tree of leaf data ``leaves``."""
    return inclusion_proof_from_hashes(index, [leaf_hash(d) for d in leaves])


def consistency_proof_from_hashes(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The consistency proof (RFC 9162 §2.1.4.1) that the first ``old_size`` leaves of
    ``leaf_hashes`` are a prefix of the whole tree.

    Empty when ``old_size`` is 0 or equals the tree size. Raises ``ValueError`` unless
    ``0 <= old_size <= len(leaf_hashes)``.
    """
    size = len(leaf_hashes)
    if not 0 <= old_size <= size:
        raise ValueError(f"old size {old_size} is outside a tree of size {size}")
    _check_hashes(leaf_hashes)
    if old_size in (0, size):
        return []
    # SUBPROOF(m, D[lo:hi], b), unrolled: each step appends one node, the recursion ends
    # when m equals the subtree size (emitting MTH of that subtree unless b is still true).
    path: list[bytes] = []
    lo, hi, m, complete = 0, size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            path.append(_mth(leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            path.append(_mth(leaf_hashes, lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        path.append(_mth(leaf_hashes, lo, hi))
    path.reverse()
    return path


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The consistency proof between the first ``old_size`` leaves and all of ``leaves``."""
    return consistency_proof_from_hashes(old_size, [leaf_hash(d) for d in leaves])


def _all_hashes(items: Sequence[bytes]) -> bool:
    return all(isinstance(h, bytes | bytearray) and len(h) == HASH_SIZE for h in items)


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes | None:
    """The root implied by an audit path (RFC 9162 §2.1.3.2), or ``None`` if the path
    cannot belong to leaf ``index`` of a tree of ``size`` (wrong length, bad hash sizes,
    index out of range)."""
    if not 0 <= index < size or not _all_hashes([leaf_hash, *proof]):
        return None
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return r


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows the leaf with hash ``leaf_hash`` at ``index`` in the tree of
    ``size`` leaves whose root is ``root`` (RFC 9162 §2.1.3.2). Never raises."""
    computed = root_from_inclusion_proof(index, size, leaf_hash, proof)
    return computed is not None and len(root) == HASH_SIZE and computed == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree of ``old_size`` leaves with root ``old_root`` is a
    prefix of the tree of ``new_size`` leaves with root ``new_root`` (RFC 9162 §2.1.4.2).

    Edge cases: equal sizes verify only with an empty proof and equal roots; an old size of
    0 verifies only with an empty proof and ``old_root == EMPTY_ROOT``; a shrinking tree
    never verifies. Never raises.
    """
    if not _all_hashes([old_root, new_root, *proof]) or not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = bytes(path[0])
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
