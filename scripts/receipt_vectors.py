#!/usr/bin/env python3
"""Golden vectors for docs/RECEIPT.md, computed without spawn-elite's code.

This follows the specification in docs/RECEIPT.md using the `blake3` package
from PyPI and the recursive tree definition of RFC 6962, so that it checks the
Rust implementation (which builds the tree level by level with rs_merkle)
rather than repeating it.

    pip install blake3
    python3 scripts/receipt_vectors.py            # markdown for the doc
    python3 scripts/receipt_vectors.py --make DIR N   # build tree T<N> in DIR
    python3 scripts/receipt_vectors.py --verify-proof PROOF FILE
"""

import json
import os
import struct
import sys

from blake3 import blake3

# (path, mode, content); tree T<n> is the first n entries.
ENTRIES = [
    ("README.md", 0o100644, b"hello\n"),
    ("bin/run", 0o100755, b"#!/bin/sh\necho run\n"),
    ("a.txt", 0o100644, b""),
    ("a/b.txt", 0o100644, b"nested\n"),
    ("link", 0o120000, b"a.txt"),  # a symlink; the content is its target
    ("a-b", 0o100644, b"dash\n"),
    ("Zebra", 0o100644, b"upper\n"),
    ("\u00e9.txt", 0o100644, b"unicode\n"),
]
SIZES = [0, 1, 2, 3, 5, 8]


def h(data: bytes) -> bytes:
    return blake3(data).digest()


def leaf(path: str, mode: int, content: bytes) -> bytes:
    p = path.encode("utf-8")
    return h(b"\x00" + struct.pack("<Q", len(p)) + p + struct.pack("<I", mode) + h(content))


def mth(leaves: list) -> bytes:
    """RFC 6962 section 2.1: split at the largest power of two below n."""
    n = len(leaves)
    if n == 0:
        return h(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return h(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def tree(n: int) -> list:
    return sorted(ENTRIES[:n], key=lambda e: e[0].encode("utf-8"))


def root(n: int) -> str:
    return mth([leaf(*e) for e in tree(n)]).hex()


def make(directory: str, n: int) -> None:
    for path, mode, content in ENTRIES[:n]:
        full = os.path.join(directory, path)
        os.makedirs(os.path.dirname(full) or directory, exist_ok=True)
        if mode == 0o120000:
            os.symlink(content, full)
        else:
            with open(full, "wb") as f:
                f.write(content)
            os.chmod(full, 0o755 if mode == 0o100755 else 0o644)


def root_from_proof(node: bytes, index: int, count: int, siblings: list) -> bytes:
    """Walk up level by level; an odd node at a level's end has no sibling."""
    if index >= count:
        raise ValueError("leaf_index outside leaf_count")
    k = 0
    while count > 1:
        if index % 2 == 1:
            node = h(b"\x01" + siblings[k] + node)
            k += 1
        elif index + 1 < count:
            node = h(b"\x01" + node + siblings[k])
            k += 1
        index //= 2
        count = (count + 1) // 2
    if k != len(siblings):
        raise ValueError("wrong number of siblings")
    return node


def verify_proof(proof_path: str, file_path: str) -> bool:
    p = json.load(open(proof_path))
    if os.path.islink(file_path):
        mode, content = 0o120000, os.fsencode(os.readlink(file_path))
    else:
        mode = 0o100755 if os.stat(file_path).st_mode & 0o100 else 0o100644
        content = open(file_path, "rb").read()
    node = leaf(p["path"], mode, content)
    siblings = [bytes.fromhex(s) for s in p["siblings"]]
    return root_from_proof(node, p["leaf_index"], p["leaf_count"], siblings).hex() == p["merkle_root"]


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--make":
        make(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--verify-proof":
        ok = verify_proof(sys.argv[2], sys.argv[3])
        print("ok" if ok else "does not verify")
        sys.exit(0 if ok else 10)
    print("| tree | files | merkle_root |")
    print("|---|---|---|")
    for n in SIZES:
        print(f"| T{n} | {n} | `{root(n)}` |")
    print()
    print("Intermediate values for T8, in receipt order:")
    print()
    print("| # | path | mode | content BLAKE3 | leaf hash |")
    print("|---|---|---|---|---|")
    for i, (path, mode, content) in enumerate(tree(8)):
        print(f"| {i} | `{path}` | {mode:o} | `{h(content).hex()}` | `{leaf(path, mode, content).hex()}` |")


if __name__ == "__main__":
    main()
