#!/usr/bin/env python3
"""Write a receiver log (the hash-chained JSONL of `spawn-elite receive`)
for N repositories with K events each, to measure the registry's index.

Each line is what the receiver logs for an accepted callback (seq,
received_at, keyid, idempotency_key, content_digest, receipt, prev; see
src/receive/verify.rs), chained as docs/CALLBACK.md describes, and each
receipt is a v2 spawn receipt that `Receipt::parse` accepts: a three-file
list whose merkle_root is computed here, with scripts/receipt_vectors.py's
independent implementation of docs/RECEIPT.md. Event 1 of a repository is
its spawn, events 2..K updates that move it up its template set's versions,
so that `behind=` has answers. The content digest is of the compact
receipt, and no line carries an attestation: nothing here is signed.

    pip install blake3
    python3 scripts/registry-log.py OUT [--repos N] [--events K]

Deterministic: the same arguments give the same bytes.
"""

import argparse
import base64
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from receipt_vectors import h, leaf  # noqa: E402

from blake3 import blake3  # noqa: E402

GENESIS = "0" * 64
SETS = ["web", "cli", "data"]
VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "1.9.0", "1.10.0", "2.0.0-rc.1", "2.0.0", "2.1.0"]
TYPES = ["rust-cli", "rust-lib", "py-svc", "go-svc"]
# 2026-11-01T00:00:00Z; lines are 0.5 ms apart.
START = 1793491200

FIXED = [
    (".gitignore", 0o100644, b"/target\n"),
    ("src/main.rs", 0o100644, b"fn main() {}\n"),
]
FIXED_LEAVES = [leaf(p, m, c) for p, m, c in FIXED]
FIXED_ENTRIES = [
    {"path": p, "size": len(c), "mode": "100644", "blake3": h(c).hex()} for p, m, c in FIXED
]


def digest_of(name):
    return blake3(name.encode()).hexdigest()


SET_DIGESTS = {(s, v): digest_of(f"{s}@{v}") for s in SETS for v in VERSIONS}


def receipt(name, kind, set_name, version, event):
    """A v2 spawn receipt of README.md (its text differs per event) and the
    two fixed files, sorted by path as receipts are."""
    readme = f"# {name}\n\nevent {event}\n".encode()
    leaves = [FIXED_LEAVES[0], leaf("README.md", 0o100644, readme), FIXED_LEAVES[1]]
    # RFC 6962 over three leaves: H(1 || H(1 || l0 || l1) || l2).
    root = h(b"\x01" + h(b"\x01" + leaves[0] + leaves[1]) + leaves[2]).hex()
    files = [
        FIXED_ENTRIES[0],
        {"path": "README.md", "size": len(readme), "mode": "100644", "blake3": h(readme).hex()},
        FIXED_ENTRIES[1],
    ]
    return {
        "format": "spawn-elite.receipt/v2",
        "tool": {"name": "spawn-elite", "version": "0.1.0"},
        "spawn": {
            "name": name,
            "type": kind,
            "options": {"org": f"team-{hash_small(name) % 20}"},
            "templates": {
                "source": "dir",
                "name": set_name,
                "version": version,
                "digest": SET_DIGESTS[(set_name, version)],
            },
            "elite": event % 2 == 0,
        },
        "created": "2026-11-01T00:00:00Z",
        "merkle_root": root,
        "leaf_count": 3,
        "files": files,
    }


def hash_small(text):
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


def version_at(repo, event, events):
    """Repository `repo`'s version at its event `event` (0-based): rising
    to a final version that differs from one repository to the next."""
    final = repo % len(VERSIONS)
    return VERSIONS[(final * (event + 1)) // events]


def stamps():
    """received_at of each line, in jiff's format (fraction without
    trailing zeros, as `jiff::Timestamp` prints it)."""
    last_sec, prefix = None, ""
    n = 0
    while True:
        sec, ms2 = divmod(n, 2000)
        if sec != last_sec:
            last_sec = sec
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(START + sec))
        micros = ms2 * 500
        if micros == 0:
            yield prefix + "Z"
        else:
            yield prefix + "." + f"{micros:06d}".rstrip("0") + "Z"
        n += 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--repos", type=int, default=100_000)
    p.add_argument("--events", type=int, default=10)
    a = p.parse_args()
    if a.repos < 1 or a.events < 1:
        raise SystemExit("--repos and --events must be at least 1")
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    prev = GENESIS
    seq = 0
    when = stamps()
    names = [f"repo-{i:07d}" for i in range(a.repos)]
    # Repositories in a scattered order, as callbacks arrive.
    order = sorted(range(a.repos), key=lambda i: hash_small(names[i]))
    tmp = a.out + ".tmp"
    with open(tmp, "wb", buffering=1 << 22) as out:
        for event in range(a.events):
            for i in order:
                seq += 1
                r = receipt(names[i], TYPES[i % len(TYPES)], SETS[i % len(SETS)],
                            version_at(i, event, a.events), event)
                body = dumps(r).encode()
                digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
                line = (
                    '{"seq":%d,"received_at":"%s","keyid":"bench-sender","idempotency_key":"%s",'
                    '"content_digest":"sha-256=:%s:","receipt":%s,"prev":"%s"}'
                    % (seq, next(when), r["merkle_root"], digest, body.decode(), prev)
                ).encode()
                out.write(line)
                out.write(b"\n")
                prev = blake3(line).hexdigest()
    os.replace(tmp, a.out)
    print(f"{a.out}: {seq} lines, {a.repos} repositories x {a.events} events", file=sys.stderr)


if __name__ == "__main__":
    main()
